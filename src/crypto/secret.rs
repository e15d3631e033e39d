//! Typed secrets in memory: passphrases, PINs and passwords as they are typed and passed on.
//!
//! A [`SecretText`] is wiped when dropped and never prints its contents (`Debug` shows only
//! that it is set), so a secret cannot reach a log line, a panic message or a test snapshot by
//! way of a derived `Debug`. It derefs to `String`, so a text field can edit it in place.

use zeroize::Zeroizing;

/// A secret string, wiped on drop, whose `Debug` is redacted.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// Takes the text out, leaving this empty (both buffers are wiped when dropped).
    pub fn take(&mut self) -> Self {
        std::mem::take(self)
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("SecretText(empty)")
        } else {
            f.write_str("SecretText(..)")
        }
    }
}

impl std::ops::Deref for SecretText {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl std::ops::DerefMut for SecretText {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.0
    }
}

impl From<&str> for SecretText {
    fn from(text: &str) -> Self {
        Self::new(text.to_owned())
    }
}

impl From<String> for SecretText {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret_and_take_empties() {
        let mut s = SecretText::from("hunter2 hunter2");
        assert_eq!(format!("{s:?}"), "SecretText(..)");
        let taken = s.take();
        assert!(s.is_empty());
        assert_eq!(taken.as_str(), "hunter2 hunter2");
        assert_eq!(format!("{s:?}"), "SecretText(empty)");
    }
}
