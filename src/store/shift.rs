//! The crew on shift on a shared tablet: who signed in, each with their own secret (their
//! keyring passphrase on this tablet), kept in the encrypted store so an idle lock or a
//! restart mid-shift does not lose it. New records take this crew; a shift older than
//! [`super::recent::SHIFT_HOURS`] has ended and is not offered.
//!
//! Who a user is (name, role, registration) comes from the trust's staff list
//! (`model::reference`); the store only checks the secret and keeps the list.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::keyring::Keyring;
use super::{Result, Store, StoreError, audit, keyring_path};
use crate::crypto::KeyError;
use crate::model::CrewMember;

/// Device setting holding the shift (JSON of [`Shift`]).
const SHIFT: &str = "shift.crew";

/// One member of the crew on shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftMember {
    /// Their user on this tablet, which checked their secret.
    pub user: String,
    /// Their id in the trust's staff list.
    pub staff_id: String,
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub registration: String,
}

impl ShiftMember {
    /// As a record's crew lists them.
    pub fn crew_member(&self) -> CrewMember {
        CrewMember {
            name: self.name.clone(),
            role: self.role.clone(),
            registration: self.registration.clone(),
        }
    }
}

/// The crew signed in on this tablet, and when the shift began.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub started_at_utc: Option<DateTime<Utc>>,
    pub members: Vec<ShiftMember>,
}

impl Shift {
    /// The crew as a new record takes it.
    pub fn crew(&self) -> Vec<CrewMember> {
        self.members.iter().map(ShiftMember::crew_member).collect()
    }
}

impl Store {
    /// The crew on shift at `now` (empty when no one signed in, or the shift is over).
    pub fn shift(&self, now: DateTime<Utc>) -> Result<Shift> {
        let Some(text) = self.setting(SHIFT)? else {
            return Ok(Shift::default());
        };
        let shift: Shift = serde_json::from_str(&text)?;
        let over = shift
            .started_at_utc
            .is_none_or(|t| now - t > Duration::hours(super::recent::SHIFT_HOURS));
        Ok(if over { Shift::default() } else { shift })
    }

    /// Signs `member` on to the shift once `passphrase` opens their own keyring entry (the
    /// same lockout as unlocking applies to wrong ones). Already on the shift: nothing
    /// changes. Returns the shift.
    pub fn sign_in_crew(
        &mut self,
        member: ShiftMember,
        passphrase: &str,
        now: DateTime<Utc>,
    ) -> Result<Shift> {
        let kr_path = keyring_path(&self.data_dir);
        let mut keyring = Keyring::load(&kr_path)?
            .ok_or_else(|| StoreError::KeyringMissing(self.data_dir.clone()))?;
        let entry = keyring
            .user_mut(&member.user)
            .ok_or_else(|| StoreError::UnknownUser(member.user.clone()))?;
        if let Some(wait_secs) = entry.wait_secs(now) {
            return Err(StoreError::RateLimited { wait_secs });
        }
        match entry.wrapped.open(passphrase, &member.user) {
            Ok(_) => {
                if entry.failed_attempts > 0 {
                    entry.record_success();
                    keyring.save(&kr_path)?;
                }
            }
            Err(KeyError::WrongPassphrase) => {
                entry.record_failure(now);
                keyring.save(&kr_path)?;
                return Err(StoreError::WrongPassphrase);
            }
            Err(e) => return Err(e.into()),
        }
        self.add_to_shift(member, now)
    }

    /// Signs the user who unlocked this tablet on to the shift: unlocking proved their
    /// secret. Refused for anyone else.
    pub fn join_shift(&mut self, member: ShiftMember, now: DateTime<Utc>) -> Result<Shift> {
        if member.user != self.user {
            return Err(StoreError::UnknownUser(member.user));
        }
        self.add_to_shift(member, now)
    }

    fn add_to_shift(&mut self, member: ShiftMember, now: DateTime<Utc>) -> Result<Shift> {
        let mut shift = self.shift(now)?;
        if shift.members.iter().any(|m| m.user == member.user) {
            return Ok(shift);
        }
        if shift.members.is_empty() {
            shift.started_at_utc = Some(now);
        }
        let user = member.user.clone();
        shift.members.push(member);
        self.set_setting(SHIFT, &serde_json::to_string(&shift)?)?;
        self.audit_by(&user, audit::Action::CrewSignedIn)?;
        Ok(shift)
    }

    /// Ends the shift: no crew is signed in.
    pub fn end_shift(&mut self) -> Result<()> {
        self.delete_setting(SHIFT)?;
        self.audit(audit::Action::ShiftEnded, None, None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::KdfParams;
    use crate::store::migrate;

    fn member(user: &str, name: &str) -> ShiftMember {
        ShiftMember {
            user: user.to_owned(),
            staff_id: format!("s-{user}"),
            name: name.to_owned(),
            role: "Paramedic".to_owned(),
            registration: "PA1".to_owned(),
        }
    }

    #[test]
    fn each_member_signs_in_with_their_own_secret_and_the_shift_ends_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create_with(
            dir.path(),
            "alex",
            "2468",
            KdfParams::FAST_FOR_TESTS,
            migrate::latest_version(),
        )
        .unwrap();
        store
            .add_user(
                "sam",
                "otter quarry velvet ninety",
                KdfParams::FAST_FOR_TESTS,
            )
            .unwrap();
        let now = Utc::now();
        assert_eq!(store.shift(now).unwrap(), Shift::default());

        // The unlocked user's passphrase does not sign another member in.
        assert!(matches!(
            store.sign_in_crew(member("sam", "Sam Lee"), "2468", now),
            Err(StoreError::WrongPassphrase)
        ));
        assert!(store.shift(now).unwrap().members.is_empty());
        assert!(matches!(
            store.sign_in_crew(member("kit", "Kit"), "2468", now),
            Err(StoreError::UnknownUser(_))
        ));
        assert!(matches!(
            store.join_shift(member("sam", "Sam Lee"), now),
            Err(StoreError::UnknownUser(_))
        ));
        store
            .join_shift(member("alex", "Alex Morgan"), now)
            .unwrap();
        let shift = store
            .sign_in_crew(member("sam", "Sam Lee"), "otter quarry velvet ninety", now)
            .unwrap();
        assert_eq!(shift.crew().len(), 2);
        assert_eq!(shift.crew()[1].name, "Sam Lee");
        // Again: nothing doubles.
        let again = store
            .sign_in_crew(member("sam", "Sam Lee"), "otter quarry velvet ninety", now)
            .unwrap();
        assert_eq!(again.members.len(), 2);

        // Kept across a restart; over after a shift's length.
        drop(store);
        let mut store =
            Store::unlock_with_policy(dir.path(), Some("alex"), "2468", KdfParams::FAST_FOR_TESTS)
                .unwrap();
        assert_eq!(store.shift(now).unwrap().members.len(), 2);
        let later = now + Duration::hours(crate::store::recent::SHIFT_HOURS + 1);
        assert!(store.shift(later).unwrap().members.is_empty());
        store.end_shift().unwrap();
        assert!(store.shift(now).unwrap().members.is_empty());
        let actions: Vec<String> = store
            .conn
            .prepare("SELECT action FROM audit_log ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert!(actions.contains(&"crew_signed_in".to_owned()));
        assert!(actions.contains(&"shift_ended".to_owned()));
    }
}
