//! Who is acting: the identity the change log and the access log record. For the
//! command line it is the operating-system user running mailvault; a web user or
//! API token is a [`crate::readers::Principal`], recorded as `web:NAME` or
//! `token:NAME`.

/// The name of the user this process runs as (`uid 1234` when the system has no
/// name for it).
pub fn os_user() -> String {
    // SAFETY: getuid cannot fail; getpwuid_r writes only into the buffers given,
    // whose sizes are passed, and `result` is either null or points into `pw`.
    unsafe {
        let uid = libc::getuid();
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pw.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned();
            if !name.is_empty() {
                return name;
            }
        }
        format!("uid {uid}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_os_user_has_a_name() {
        let name = super::os_user();
        assert!(!name.is_empty());
        assert!(!name.contains('\0'));
    }
}
