//! Keeps a crashing app from writing its memory (decrypted records, the store key) to disk.
//!
//! Sets the core-file size limit to zero (soft and hard, so nothing in the process can raise
//! it again) and, on Linux, marks the process not dumpable, which also stops other processes
//! of the same user from attaching a debugger to read its memory. Where the platform offers
//! neither, the failure is logged and the app carries on: this lowers a risk, it does not
//! guard a record.

/// Turns core dumps off for this process. Returns what could not be done, if anything.
pub fn disable() -> Result<(), String> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, setrlimit};
        let none = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        setrlimit(Resource::Core, none).map_err(|e| format!("core-file limit: {e}"))?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .map_err(|e| format!("not dumpable: {e}"))?;
    }
    Ok(())
}

/// This process's core-file size limit (soft, hard) in bytes; `None` is unlimited.
#[cfg(unix)]
pub fn core_limit_bytes() -> (Option<u64>, Option<u64>) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
    (limit.current, limit.maximum)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn after_disabling_no_core_file_is_written() {
        disable().unwrap();
        assert_eq!(core_limit_bytes(), (Some(0), Some(0)));
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }
}
