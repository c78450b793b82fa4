package shamir

// Arithmetic in GF(2^8) with the AES reduction polynomial
// x^8 + x^4 + x^3 + x + 1 (0x11b), as in FIPS-197 section 4.2.
//
// Every function here runs in time independent of its operands: there are no
// table lookups indexed by field elements and no branches on them. Secret
// bytes (the y-values of shares and the reconstructed secret) pass through
// mul, so a log/exp-table implementation would leak them through the cache.

// add returns a + b, which in characteristic 2 is also a - b.
func add(a, b byte) byte { return a ^ b }

// mul returns a * b by shift-and-add ("Russian peasant" multiplication),
// reducing by 0x1b whenever a overflows. The conditional steps are applied
// through masks: -(bit) is 0x00 or 0xff.
func mul(a, b byte) byte {
	var r byte
	for i := 0; i < 8; i++ {
		r ^= a & -(b & 1)
		b >>= 1
		carry := -(a >> 7)
		a = (a << 1) ^ (0x1b & carry)
	}
	return r
}

// inv returns the multiplicative inverse of a, computed as a^254 (the group of
// non-zero elements has order 255, so a^254 * a = 1). inv(0) is 0, which
// callers never rely on: Combine rejects inputs that would divide by zero.
// The exponent is a public constant, so the square-and-multiply chain is
// fixed.
func inv(a byte) byte {
	a2 := mul(a, a)         // a^2
	a3 := mul(a2, a)        // a^3
	a6 := mul(a3, a3)       // a^6
	a12 := mul(a6, a6)      // a^12
	a15 := mul(a12, a3)     // a^15
	a30 := mul(a15, a15)    // a^30
	a60 := mul(a30, a30)    // a^60
	a120 := mul(a60, a60)   // a^120
	a126 := mul(a120, a6)   // a^126
	a252 := mul(a126, a126) // a^252
	return mul(a252, a2)    // a^254
}

// div returns a / b for b != 0.
func div(a, b byte) byte { return mul(a, inv(b)) }
