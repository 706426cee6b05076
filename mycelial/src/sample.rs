//! Weighted sampling with a seeded generator: the mycelial scheduler picks a
//! node with probability proportional to `C² × fit`, so better nodes get more
//! work without the best one getting all of it.

use rand::Rng;

/// The weight of a node: `C² × fit`, where `fit` in 0–1 says how well the
/// instance fits the node's free resources.
pub fn weight(composite: f64, fit: f64) -> f64 {
    let c = composite.clamp(0.0, 1.0);
    c * c * fit.clamp(0.0, 1.0)
}

/// An index drawn with probability proportional to `weights` (non-finite and
/// negative weights count as 0); `None` when every weight is 0.
pub fn weighted_index<R: Rng + ?Sized>(weights: &[f64], rng: &mut R) -> Option<usize> {
    let clean = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
    let total: f64 = weights.iter().copied().map(clean).sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = rng.gen::<f64>() * total;
    let mut last = None;
    for (i, w) in weights.iter().copied().map(clean).enumerate() {
        if w <= 0.0 {
            continue;
        }
        last = Some(i);
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    last
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn draws_follow_the_weights_and_zero_is_never_drawn() {
        let mut rng = StdRng::seed_from_u64(7);
        let w = [0.0, 1.0, 3.0, f64::NAN];
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[weighted_index(&w, &mut rng).unwrap()] += 1;
        }
        assert_eq!(counts[0], 0);
        assert_eq!(counts[3], 0);
        let ratio = counts[2] as f64 / counts[1] as f64;
        assert!((2.8..3.2).contains(&ratio), "{counts:?}");
        assert_eq!(weighted_index(&[0.0, -1.0], &mut rng), None);
        assert!((weight(0.9, 0.5) - 0.405).abs() < 1e-12);
    }

    #[test]
    fn the_same_seed_draws_the_same() {
        let w = [0.2, 0.5, 0.3];
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| weighted_index(&w, &mut rng).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
    }
}
