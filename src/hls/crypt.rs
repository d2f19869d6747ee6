//! AES-128-CBC with PKCS#7 padding over a whole segment (RFC 8216 4.3.2.4, METHOD=AES-128),
//! encrypted as it is written: whole blocks as they come, the padded rest at the end.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

pub struct Cbc {
    aes: Aes128,
    prev: [u8; 16],
}

impl Cbc {
    /// `iv`: the playlist's `IV` attribute (nginx-rtmp-module uses the key's segment id).
    pub fn new(key: &[u8; 16], iv: u128) -> Self {
        Cbc { aes: Aes128::new(key.into()), prev: iv.to_be_bytes() }
    }

    /// Encrypts the whole blocks at the front of `buf` in place (and, when `last`, pads the
    /// rest and encrypts it too). Returns how many bytes of `buf` are now ready to write.
    pub fn encrypt(&mut self, buf: &mut Vec<u8>, last: bool) -> usize {
        if last {
            let pad = 16 - buf.len() % 16;
            buf.extend(std::iter::repeat_n(pad as u8, pad));
        }
        let n = buf.len() / 16 * 16;
        for block in buf[..n].chunks_exact_mut(16) {
            for (b, p) in block.iter_mut().zip(self.prev) {
                *b ^= p;
            }
            self.aes.encrypt_block(block.into());
            self.prev.copy_from_slice(block);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nist_cbc_vector_and_padding() {
        // NIST SP 800-38A F.2.1, first block.
        let key = [0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c];
        let iv = 0x000102030405060708090a0b0c0d0e0f_u128;
        let mut buf = vec![0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a, 1, 2, 3];
        let mut c = Cbc::new(&key, iv);
        assert_eq!(c.encrypt(&mut buf, false), 16);
        assert_eq!(buf[..16], [0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9, 0x19, 0x7d]);
        buf.drain(..16);
        // The tail is padded to a block: 3 bytes + 13 bytes of 13.
        assert_eq!(c.encrypt(&mut buf, true), 16);
        assert_eq!(buf.len(), 16);
        // An exact multiple gets a whole block of padding.
        let mut whole = vec![0u8; 32];
        assert_eq!(Cbc::new(&key, 0).encrypt(&mut whole, true), 48);
    }
}
