package core

import "fmt"

// maxJPEGScans is the maximum number of scans in a JPEG. Go's image/jpeg
// runs every scan of a progressive JPEG over all blocks of its components
// and sets no bound on their number, so a file of a few hundred kilobytes
// can repeat a scan thousands of times. With 1000 copies of a 13-byte
// scan, a 6000x6000 JPEG took 28 s to decode, against 1.8 s without them
// (measured on the 2-core test machine). libjpeg's standard progressive
// script has 10 scans for colour images and 6 for grey ones, so 100 leaves
// a wide margin. At the limit the cost stays bounded: a 6320x6320 JPEG with
// 100 scans took 8.7 s, against 0.9 s with its own 10.
const maxJPEGScans = 100

// checkJPEGScans counts the start-of-scan (SOS) markers of a JPEG by
// walking its marker segments, and rejects one with more than maxScans. A
// walk that runs into malformed data stops there without an error, which
// the decoder then reports.
func checkJPEGScans(data []byte, maxScans int) error {
	scans := 0
	i := 2 // after the SOI marker
	for i+1 < len(data) {
		if data[i] != 0xff {
			return nil
		}
		marker := data[i+1]
		i += 2
		switch {
		case marker == 0xff:
			i-- // a fill byte before the marker
			continue
		case marker == 0xd9: // EOI
			return nil
		case marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7): // TEM, RSTn: no length
			continue
		}
		if i+1 >= len(data) {
			return nil
		}
		length := int(data[i])<<8 | int(data[i+1])
		if length < 2 {
			return nil
		}
		i += length
		if marker != 0xda { // not SOS
			continue
		}
		scans++
		if scans > maxScans {
			return fmt.Errorf("%w: jpeg image has more than %d scans: re-save it as a baseline JPEG or with a standard progressive script",
				ErrInvalidImage, maxScans)
		}
		// Skip the entropy-coded data, which ends at the first marker
		// other than a stuffed 0xff00 or a restart marker.
		for i+1 < len(data) && (data[i] != 0xff || data[i+1] == 0 || (data[i+1] >= 0xd0 && data[i+1] <= 0xd7)) {
			i++
		}
	}
	return nil
}
