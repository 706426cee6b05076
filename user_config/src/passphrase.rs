//! Where a passphrase comes from: `UNIVRS_PASSPHRASE`, else a prompt without echo.

use std::io::IsTerminal;

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The environment variable read for the passphrase before prompting.
pub const PASSPHRASE_ENV: &str = "UNIVRS_PASSPHRASE";

/// The passphrase from `UNIVRS_PASSPHRASE` if set, else asked on the terminal
/// without echo. Without a terminal and without the variable: [`Error::NoPassphrase`].
pub fn passphrase_from_env_or_prompt(prompt: &str) -> Result<SecretString> {
    passphrase_with(
        |name| std::env::var(name).ok(),
        std::io::stdin().is_terminal(),
        || rpassword::prompt_password(prompt),
    )
}

/// A new passphrase: `UNIVRS_PASSPHRASE` if set, else asked twice on the terminal
/// (the entries must match). An empty passphrase is refused.
pub fn new_passphrase_from_env_or_prompt(prompt: &str) -> Result<SecretString> {
    let first = passphrase_from_env_or_prompt(prompt)?;
    if std::env::var_os(PASSPHRASE_ENV).is_none() {
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat the passphrase: ")
                .map_err(|source| Error::PassphrasePrompt { source })?,
        );
        if again.as_str() != first.expose_secret() {
            return Err(Error::PassphraseMismatch);
        }
    }
    if first.expose_secret().is_empty() {
        return Err(Error::EmptyPassphrase);
    }
    Ok(first)
}

/// The logic of [`passphrase_from_env_or_prompt`] with its inputs injected: `env`
/// looks up a variable, `is_tty` tells whether standard input is a terminal, and
/// `prompt` reads a line without echo.
pub fn passphrase_with(
    env: impl Fn(&str) -> Option<String>,
    is_tty: bool,
    prompt: impl FnOnce() -> std::io::Result<String>,
) -> Result<SecretString> {
    if let Some(value) = env(PASSPHRASE_ENV) {
        return Ok(SecretString::from(value));
    }
    if !is_tty {
        return Err(Error::NoPassphrase);
    }
    let line = prompt().map_err(|source| Error::PassphrasePrompt { source })?;
    Ok(SecretString::from(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_over_prompt() {
        let p = passphrase_with(
            |n| (n == PASSPHRASE_ENV).then(|| "from-env".to_owned()),
            true,
            || panic!("must not prompt"),
        )
        .unwrap();
        assert_eq!(p.expose_secret(), "from-env");
    }

    #[test]
    fn prompt_on_a_terminal() {
        let p = passphrase_with(|_| None, true, || Ok("typed".to_owned())).unwrap();
        assert_eq!(p.expose_secret(), "typed");
    }

    #[test]
    fn no_terminal_no_env_is_a_clear_error() {
        let err = passphrase_with(|_| None, false, || panic!("must not prompt")).unwrap_err();
        assert!(matches!(err, Error::NoPassphrase));
        assert!(err.to_string().contains("set UNIVRS_PASSPHRASE"), "{err}");
    }
}
