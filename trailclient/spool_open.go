package trailclient

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentSuffix) }

// openSpool opens (creating it if need be) the spool in dir, checks every
// segment record by record, cuts a damaged tail off into a ".torn" file next
// to its segment, and starts a new segment to append to.
func openSpool(dir string, maxBytes int64) (*spool, spoolReport, error) {
	var rep spoolReport
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rep, fmt.Errorf("trailclient: spool: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, rep, fmt.Errorf("trailclient: spool: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, rep, err
	}
	s := &spool{dir: dir, maxBytes: maxBytes, lock: lock, notify: make(chan struct{}, 1)}
	s.segBytes = min(max(maxBytes/8, 64<<10), 16<<20)
	fail := func(err error) (*spool, spoolReport, error) {
		s.closeFiles()
		return nil, rep, fmt.Errorf("trailclient: spool %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail(err)
	}
	var seqs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil || len(name) != 16 {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	s.ack, err = os.OpenFile(filepath.Join(dir, "ack"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	ackPos, ackOK := readAck(s.ack)
	var offsets []int64 // record ends in the first segment, to start after the ack
	for _, seq := range seqs {
		path := filepath.Join(dir, segmentName(seq))
		if ackOK && seq < ackPos.seq { // delivered; its deletion was cut short
			if err := os.Remove(path); err != nil {
				return fail(err)
			}
			continue
		}
		seg, ends, torn, err := scanSegment(path, seq)
		if err != nil {
			return fail(err)
		}
		if torn != "" {
			rep.torn = append(rep.torn, torn)
		}
		if seg == nil {
			continue
		}
		if len(s.segs) == 0 {
			offsets = ends
		}
		s.segs = append(s.segs, seg)
		s.total += seg.size
		s.appended += seg.records
	}
	// Start reading after the acknowledged position when it is in the
	// first segment; else at the start of the first segment.
	if len(s.segs) > 0 {
		first := s.segs[0]
		s.rpos = spoolPos{first.seq, int64(len(segmentMagic))}
		if ackOK && ackPos.seq == first.seq {
			if i, found := slices.BinarySearch(offsets, ackPos.off); found {
				s.rpos.off = ackPos.off
				s.read = int64(i + 1)
				s.rrecs = s.read
			}
		}
	}
	s.pending = s.appended - s.read
	rep.replayed = s.pending
	next := uint64(1)
	if n := len(s.segs); n > 0 {
		next = s.segs[n-1].seq + 1
	} else if len(seqs) > 0 {
		next = seqs[len(seqs)-1] + 1
	}
	if ackOK && ackPos.seq >= next {
		next = ackPos.seq + 1
	}
	if err := s.startSegment(next); err != nil {
		return fail(err)
	}
	if s.rpos.seq == 0 {
		s.rpos = spoolPos{next, int64(len(segmentMagic))}
	}
	return s, rep, nil
}

// scanSegment checks one segment and returns it (nil if it holds nothing:
// it is removed) and the end offset of each record. Bytes after the last
// whole record are moved to a file named like the segment with ".torn"
// added, whose name it returns, and the segment is cut there.
func scanSegment(path string, seq uint64) (*segment, []int64, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, "", err
	}
	if len(data) < len(segmentMagic) || string(data[:len(segmentMagic)]) != segmentMagic {
		if strings.HasPrefix(segmentMagic, string(data)) { // created, cut before its header was whole
			return nil, nil, "", os.Remove(path)
		}
		bad := path + ".bad"
		return nil, nil, bad, os.Rename(path, bad) // not ours, or damaged from the start: kept aside, not replayed
	}
	seg := &segment{seq: seq, size: int64(len(segmentMagic))}
	var ends []int64
	for rest := data[seg.size:]; len(rest) > 0; {
		_, n, err := decodeRecord(rest)
		if err != nil {
			break
		}
		rest = rest[n:]
		seg.size += int64(n)
		seg.records++
		ends = append(ends, seg.size)
	}
	torn := ""
	if seg.size < int64(len(data)) {
		torn = path + ".torn"
		if err := writeFileSync(torn, data[seg.size:]); err != nil {
			return nil, nil, "", err
		}
		if err := os.Truncate(path, seg.size); err != nil {
			return nil, nil, "", err
		}
	}
	if seg.records == 0 {
		return nil, nil, torn, os.Remove(path)
	}
	return seg, ends, torn, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readAck reads the "ack" file: segment (8 bytes), offset (8), CRC-32C of
// those 16 (4).
func readAck(f *os.File) (spoolPos, bool) {
	var b [20]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return spoolPos{}, false
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		return spoolPos{}, false
	}
	return spoolPos{binary.BigEndian.Uint64(b[:]), int64(binary.BigEndian.Uint64(b[8:]))}, true
}

func writeAck(f *os.File, p spoolPos) error {
	var b [20]byte
	binary.BigEndian.PutUint64(b[:], p.seq)
	binary.BigEndian.PutUint64(b[8:], uint64(p.off))
	binary.BigEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	_, err := f.WriteAt(b[:], 0)
	return err
}
