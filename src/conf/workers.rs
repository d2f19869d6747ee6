//! The top-level directives of nginx-rtmp-module's multi-worker mode, outside `rtmp {}`:
//! `rtmp_auto_push`, `rtmp_auto_push_reconnect` and `rtmp_socket_dir`. Here every worker
//! serves every stream whatever they say (`app/peer.rs`): `rtmp_auto_push` is accepted for
//! existing configurations, `rtmp_auto_push_reconnect` is how soon a worker looks again for
//! the worker of a stream its players wait for, and `rtmp_socket_dir` where the workers'
//! Unix sockets are.

use super::value::parse_msec;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workers {
    pub auto_push: bool,
    pub reconnect_ms: u64,
    pub socket_dir: String,
}

impl Default for Workers {
    fn default() -> Self {
        Workers { auto_push: false, reconnect_ms: 100, socket_dir: "/tmp".into() }
    }
}

impl Workers {
    /// Takes directive `name`'s value; the error names the directive.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "rtmp_auto_push" => {
                self.auto_push = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("invalid value \"{value}\" in \"{name}\" directive, it must be \"on\" or \"off\"")),
                }
            }
            "rtmp_auto_push_reconnect" => {
                self.reconnect_ms = parse_msec(value)
                    .filter(|&ms| (1..=60_000).contains(&ms))
                    .ok_or_else(|| format!("\"{name}\" directive: \"{value}\" is not a time from 1ms to 60s"))?
            }
            "rtmp_socket_dir" => {
                let dir = value.trim_end_matches('/');
                // (A Unix socket's path is at most 107 bytes; ours add ~40.)
                if dir.is_empty() || !dir.starts_with('/') || dir.len() > 64 || dir.contains('\0') {
                    return Err(format!("\"{name}\" directive: \"{value}\" must be an absolute directory path of at most 64 bytes"));
                }
                self.socket_dir = dir.to_owned();
            }
            _ => return Err(format!("\"{name}\" is not a multi-worker directive")),
        }
        Ok(())
    }

    /// The Unix socket worker `pid` takes other workers' pulls on, for rtmp server `server`.
    pub fn socket(&self, pid: i32, server: usize) -> String {
        format!("{}/ngx-rtmp-rs.{pid}.{server}.sock", self.socket_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::Workers;

    #[test]
    fn directives_are_checked() {
        let mut w = Workers::default();
        w.set("rtmp_auto_push", "on").unwrap();
        w.set("rtmp_auto_push_reconnect", "1s").unwrap();
        w.set("rtmp_socket_dir", "/run/rtmp/").unwrap();
        assert_eq!(w, Workers { auto_push: true, reconnect_ms: 1000, socket_dir: "/run/rtmp".into() });
        assert_eq!(w.socket(42, 0), "/run/rtmp/ngx-rtmp-rs.42.0.sock");
        assert!(w.set("rtmp_auto_push", "yes").unwrap_err().contains("rtmp_auto_push"));
        assert!(w.set("rtmp_auto_push_reconnect", "0").is_err());
        assert!(w.set("rtmp_socket_dir", "relative").unwrap_err().contains("rtmp_socket_dir"));
    }
}
