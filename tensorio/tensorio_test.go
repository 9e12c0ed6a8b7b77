package tensorio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// npyV2 is a version 2.0 .npy prefix whose header length field says n.
func npyV2(n uint32) []byte {
	b := []byte("\x93NUMPY\x02\x00\x00\x00\x00\x00")
	binary.LittleEndian.PutUint32(b[8:], n)
	return append(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n"...)
}

// A damaged header length is refused before it is allocated, and a header
// npyio cannot parse is an error, not a panic.
func TestDamagedHeaders(t *testing.T) {
	if _, err := ReadNPY(bytes.NewReader(npyV2(3_000_000_000))); err == nil || !strings.Contains(err.Error(), "header length 3000000000 is implausible") {
		t.Errorf("npy: got %v", err)
	}
	path := filepath.Join(t.TempDir(), "d.npz")
	for _, member := range [][]byte{npyV2(1 << 30), npyV2(100)} {
		var buf bytes.Buffer
		z := zip.NewWriter(&buf)
		w, _ := z.Create("x.npy")
		w.Write(member)
		z.Close()
		os.WriteFile(path, buf.Bytes(), 0o644)
		if _, err := ReadNPZ(path); err == nil {
			t.Errorf("npz with a header length of %d: no error", binary.LittleEndian.Uint32(member[8:]))
		} else {
			t.Logf("%v", err)
		}
	}
	// a header without a newline made npyio slice with [:-1]
	bad := []byte("\x93NUMPY\x01\x00\x04\x00abcd")
	if _, err := ReadNPY(bytes.NewReader(bad)); err == nil {
		t.Errorf("header without newline: no error")
	}
}
