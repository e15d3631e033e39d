//! Whether a secret is strong enough to stand up to offline guessing: the tablet's shift
//! passphrase (which wraps the store key) and supervisor passwords.
//!
//! The rule is the same everywhere it is asked: 12 to 128 characters, and a `zxcvbn` score of
//! at least 3 ("safely unguessable: moderate protection from an offline slow-hash scenario").
//! The refusal says why in words a crew member can act on, and never repeats the secret.

/// Fewest characters accepted.
pub const MIN_SECRET_CHARS: usize = 12;
/// Most characters accepted (bounds the hashing work an attacker can ask for).
pub const MAX_SECRET_CHARS: usize = 128;
/// Lowest zxcvbn score accepted (0 to 4).
pub const MIN_ZXCVBN_SCORE: u8 = 3;

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    #[error("it must be at least {MIN_SECRET_CHARS} characters")]
    TooShort,
    #[error("it must be at most {MAX_SECRET_CHARS} characters")]
    TooLong,
    /// Guessable; `hint` is zxcvbn's advice (never the secret itself).
    #[error("it is too easy to guess{}", hint_suffix(.hint))]
    Guessable { hint: Option<String> },
}

/// zxcvbn's advice as the end of our sentence: lower-case first letter, no full stop.
fn hint_suffix(hint: &Option<String>) -> String {
    let Some(hint) = hint else {
        return ". Try four or more unrelated words".to_owned();
    };
    let hint = hint.trim().trim_end_matches('.');
    let mut chars = hint.chars();
    match chars.next() {
        Some(first) => format!(" ({}{})", first.to_lowercase(), chars.as_str()),
        None => String::new(),
    }
}

/// Checks `secret`; `context` holds words an attacker would try first (the username, the
/// trust's name), which count against it.
pub fn check_secret(secret: &str, context: &[&str]) -> Result<(), WeakSecret> {
    let chars = secret.chars().count();
    if chars < MIN_SECRET_CHARS {
        return Err(WeakSecret::TooShort);
    }
    if chars > MAX_SECRET_CHARS {
        return Err(WeakSecret::TooLong);
    }
    let estimate = zxcvbn::zxcvbn(secret, context);
    if u8::from(estimate.score()) >= MIN_ZXCVBN_SCORE {
        return Ok(());
    }
    let hint = estimate.feedback().and_then(|f| {
        f.warning()
            .map(|w| w.to_string())
            .or_else(|| f.suggestions().first().map(|s| s.to_string()))
    });
    Err(WeakSecret::Guessable { hint })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_guessable_secrets_are_refused_with_a_reason() {
        assert_eq!(check_secret("2468", &[]), Err(WeakSecret::TooShort));
        assert_eq!(
            check_secret(&"a".repeat(MAX_SECRET_CHARS + 1), &[]),
            Err(WeakSecret::TooLong)
        );
        for weak in [
            "Password1234",
            "123456789012",
            "qwertyuiopas",
            "aaaaaaaaaaaa",
        ] {
            let refusal = check_secret(weak, &[]).unwrap_err();
            assert!(matches!(refusal, WeakSecret::Guessable { .. }), "{weak}");
            assert!(!refusal.to_string().contains(weak));
        }
    }

    #[test]
    fn the_username_counts_against_a_password() {
        assert!(check_secret("jsmith.jsmith.2026", &["jsmith"]).is_err());
    }

    #[test]
    fn unrelated_words_and_random_strings_pass() {
        assert_eq!(check_secret("copper kettle marsh lantern", &[]), Ok(()));
        assert_eq!(check_secret("vT7#qL9!mZ2@", &[]), Ok(()));
    }
}
