// Package erfcoef holds the fit behind ops/linalg's erf: eight degree-7
// polynomials p_k in u = |x| - Mid[k] on the intervals [k/2, k/2 + ½) of
// |x| clamped below 4 (p_0 expands around 0 with p_0(0) = 0, so erf keeps
// its relative accuracy near 0). They are minimax fits (Lawson's
// iteration on a Chebyshev grid; relative error on [0, ½), absolute
// beyond) rounded to float32: with float32 Horner evaluation within 9e-8
// absolute of math.Erf and 1.8e-7 relative below ½. The amd64 (asmgen)
// and arm64 (neongen) generators and the pure-Go table (erftab.go, written
// by asmgen) all take them from here.
package erfcoef

// Coef[j][k] is the coefficient of u^j on interval k (float32 bits).
var Coef = [8][8]uint32{
	{0x00000000, 0x3f360e4c, 0x3f6c432f, 0x3f7c9684, 0x3f7fa024, 0x3f7ff968, 0x3f7fffb8, 0x3f7ffffe},
	{0x3f906ebb, 0x3f249721, 0x3e723298, 0x3d582a98, 0x3bea0a1e, 0x3a19b068, 0x37f4dae8, 0x356c9b7d},
	{0xb5d9b432, 0xbef6e2ad, 0xbe975faa, 0xbdbd2540, 0xbc83a590, 0xbad352b7, 0xb8c6f496, 0xb65dddd2},
	{0xbec08d15, 0x3cdb72d5, 0x3e2b8e8a, 0x3db8a476, 0x3cb1f790, 0x3b34e770, 0x394d5363, 0x3705b73f},
	{0xba166d44, 0x3e1a4abf, 0xbbc8ef6c, 0xbd450a43, 0xbc9c5ef7, 0xbb557f59, 0xb99608fe, 0xb7674863},
	{0x3ded642b, 0xbd59f389, 0xbd414829, 0x3bd8d3ad, 0x3c2eaa38, 0x3b34a4c9, 0x39a4692d, 0x3799d277},
	{0xbc043860, 0xbcd9c739, 0x3ca8bd12, 0x3c1442cb, 0xbb362a48, 0xbada9afc, 0xb98f8773, 0xb7ad91db},
	{0xbc92e97c, 0x3c920ac5, 0x3b764795, 0xbbc1fb13, 0xba3ead52, 0x3a266734, 0x39366a40, 0x378f53dd},
}

// Mid[k] is interval k's expansion point.
var Mid = [8]float32{0, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75}

// ClampBits is the float32 below 4, where |x| is clamped.
const ClampBits = 0x407fffff
