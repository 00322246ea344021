package trail

import "strings"

// Personal fields (the actor's name, email, IP and user agent, the target's
// name) may hold the encrypted form that the privacy layer (package
// trailprivacy) stores: "enc:v1:<key-id>:<base64url(nonce|ciphertext|tag)>".
// Their limits are limits on the plaintext, which trailprivacy checks before
// encrypting; Validate lets the ciphertext of a plaintext at the limit pass.
const encryptedPrefix = "enc:v1:"

// storedLimit is the length limit Validate applies to the personal field s
// whose plaintext limit is max.
func storedLimit(s string, max int) int {
	if strings.HasPrefix(s, encryptedPrefix) {
		// prefix, key ID (at most 64), ':', unpadded base64url of
		// nonce (12) | ciphertext (max) | tag (16).
		return len(encryptedPrefix) + 64 + 1 + ((12+max+16)*4+2)/3
	}
	return max
}
