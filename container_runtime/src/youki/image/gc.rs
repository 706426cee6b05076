//! Garbage collection: orphan blobs always go, and least recently used images
//! that no container holds and no pull relies on go while the cache is too big.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use orchestrator_shared_types::private_fs;
use tracing::{info, warn};

use super::index::ImageRecord;
use super::{with_context, ImageStore, State};

impl ImageStore {
    /// Deletes blobs no image needs, then — while the cache exceeds
    /// `max_cache_bytes` — the least recently used images no container holds,
    /// with the blobs only they used. Returns the bytes freed.
    pub async fn gc(&self) -> io::Result<u64> {
        self.gc_keeping(None).await
    }

    pub(super) async fn gc_keeping(&self, keep: Option<&str>) -> io::Result<u64> {
        let trash = self.tmp_path("gc");
        let plan = {
            let mut st = self.lock_state();
            let plan = plan_gc(&st, self.cfg.max_cache_bytes, keep);
            if plan.images.is_empty() && plan.blobs.is_empty() {
                return Ok(0);
            }
            for hex in &plan.images {
                st.index.remove_image(hex);
            }
            for hex in &plan.blobs {
                st.index.blobs.remove(hex);
            }
            // Renames are quick; doing them under the lock means a pull never
            // sees a blob or rootfs that is about to disappear.
            private_fs::create_dir_all(&trash)?;
            for hex in &plan.images {
                move_to_trash(&self.rootfs_dir(hex), &trash.join(format!("rootfs-{hex}")));
            }
            for hex in &plan.blobs {
                move_to_trash(&self.blob_path(hex), &trash.join(format!("blob-{hex}")));
            }
            plan
        };
        self.persist().await?;
        let trash_for_task = trash.clone();
        tokio::task::spawn_blocking(move || fs::remove_dir_all(&trash_for_task))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| with_context(e, "deleting", &trash))?;
        info!(
            images = plan.images.len(),
            blobs = plan.blobs.len(),
            freed_bytes = plan.freed,
            cached_bytes = self.cached_bytes(),
            "image gc"
        );
        Ok(plan.freed)
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct GcPlan {
    /// Config hex of the images to delete, oldest first.
    images: Vec<String>,
    /// Blob hex to delete.
    blobs: Vec<String>,
    freed: u64,
}

/// Chooses what to evict: unreferenced blobs, then LRU images not in use,
/// pinned by a pull, or `keep`, until the cache fits in `max_bytes`.
fn plan_gc(st: &State, max_bytes: u64, keep: Option<&str>) -> GcPlan {
    let index = &st.index;
    let pinned = |hex: &str| st.pins.contains_key(hex);
    let mut users: HashMap<&str, usize> = HashMap::new();
    for (hex, rec) in &index.images {
        for blob in rec.blobs(hex) {
            *users.entry(blob).or_default() += 1;
        }
    }
    let mut plan = GcPlan::default();
    let mut total = index.cached_bytes();
    for (hex, size) in &index.blobs {
        if !users.contains_key(hex.as_str()) && !pinned(hex) {
            plan.blobs.push(hex.clone());
            plan.freed += size;
            total -= size;
        }
    }
    let mut candidates: Vec<(&String, &ImageRecord)> = index
        .images
        .iter()
        .filter(|(hex, _)| {
            !st.in_use.contains_key(hex.as_str()) && !pinned(hex) && keep != Some(hex.as_str())
        })
        .collect();
    candidates.sort_by_key(|(hex, rec)| (rec.last_used, *hex));
    for (hex, rec) in candidates {
        if total <= max_bytes {
            break;
        }
        plan.images.push(hex.clone());
        plan.freed += rec.rootfs_bytes;
        total -= rec.rootfs_bytes;
        for blob in rec.blobs(hex) {
            let Some(count) = users.get_mut(blob) else {
                continue;
            };
            *count -= 1;
            if *count == 0 && !pinned(blob) {
                let size = index.blobs.get(blob).copied().unwrap_or(0);
                plan.blobs.push(blob.to_owned());
                plan.freed += size;
                total -= size;
            }
        }
    }
    plan
}

fn move_to_trash(from: &Path, to: &Path) {
    match fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => warn!(path = %from.display(), error = %e, "image gc could not delete"),
    }
}

#[cfg(test)]
#[path = "gc_tests.rs"]
mod tests;
