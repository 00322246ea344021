package trailclient

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// ErrSpoolFull is returned by a durable Enqueue when the spool holds
// Config.SpoolBytes already: the event is not accepted, and the caller
// decides (refuse its operation, wait, or record it another way).
var ErrSpoolFull = errors.New("trailclient: the spool is full")

// ErrSpoolLocked is returned by New when another client (in this process or
// another) has the spool directory open: two writers would deliver and
// delete each other's events.
var ErrSpoolLocked = errors.New("trailclient: the spool directory is in use by another client")

// spoolPos is a place in the spool: a segment and a byte offset in it.
type spoolPos struct {
	seq uint64
	off int64
}

func (p spoolPos) before(q spoolPos) bool { return p.seq < q.seq || (p.seq == q.seq && p.off < q.off) }

type segment struct {
	seq     uint64
	size    int64 // bytes of whole records, the header included
	records int64
}

// spool is the client's durable queue: a directory of segment files, written
// by Enqueue callers and read, in order, by the sending goroutine. A segment
// is deleted once every event in it is delivered or dead-lettered; the
// position delivered up to is kept in the file "ack" (rewritten in place, not
// synced: losing it only re-sends events the server then answers as
// duplicates).
type spool struct {
	dir                string
	maxBytes, segBytes int64
	lock               *os.File
	notify             chan struct{} // the sender's wake-up, cap 1

	syncMu   sync.Mutex // one fsync at a time
	mu       sync.Mutex
	closed   bool
	segs     []*segment // in order; the last is the one appended to
	active   *os.File
	total    int64 // bytes of all segments
	appended int64 // records appended or found at open
	read     int64 // records the sender has read
	pending  int64 // records not yet delivered or dead-lettered
	synced   spoolPos
	ack      *os.File
	buf      []byte

	// The sender's reader; only the sending goroutine uses these.
	rpos  spoolPos
	rrecs int64 // records read in rpos's segment
	rfile *os.File
	rseq  uint64 // the segment rfile is
	rbuf  []byte
}

// spooled is one record read by the sender, with where it ends.
type spooled struct {
	rec spoolRecord
	end spoolPos
}

// spoolReport is what opening a spool found.
type spoolReport struct {
	replayed int64    // events waiting from an earlier run
	torn     []string // files that kept the bytes cut off a damaged segment
}

// startSegment creates segment seq, syncs it and the directory, and makes
// it the one appended to. Called with mu held (or before the spool is
// shared).
func (s *spool) startSegment(seq uint64) error {
	f, err := os.OpenFile(filepath.Join(s.dir, segmentName(seq)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(segmentMagic), 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.active = f
	s.segs = append(s.segs, &segment{seq: seq, size: int64(len(segmentMagic))})
	s.total += int64(len(segmentMagic))
	s.synced = spoolPos{seq, int64(len(segmentMagic))}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// append writes one record and returns where it ends; it is durable once
// sync has been called with that position. It refuses with ErrSpoolFull
// when the record would take the spool over its bound.
func (s *spool) append(t time.Time, event []byte) (spoolPos, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return spoolPos{}, ErrClosed
	}
	size := int64(recordHeader + minRecordBody + len(event))
	if size > recordHeader+maxRecordBody {
		return spoolPos{}, fmt.Errorf("trailclient: spool: an event of %d bytes", len(event))
	}
	if s.total+size > s.maxBytes {
		return spoolPos{}, ErrSpoolFull
	}
	seg := s.segs[len(s.segs)-1]
	if seg.records > 0 && seg.size+size > s.segBytes {
		if err := s.rotate(); err != nil {
			return spoolPos{}, fmt.Errorf("trailclient: spool: %w", err)
		}
		seg = s.segs[len(s.segs)-1]
	}
	s.buf = appendRecord(s.buf[:0], t, event)
	if _, err := s.active.WriteAt(s.buf, seg.size); err != nil {
		// Nothing half-written stays to be read: cut back to the last
		// whole record.
		s.active.Truncate(seg.size)
		return spoolPos{}, fmt.Errorf("trailclient: spool: %w", err)
	}
	seg.size += size
	seg.records++
	s.total += size
	s.appended++
	s.pending++
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return spoolPos{seg.seq, seg.size}, nil
}

// rotate syncs and closes the active segment and starts the next.
func (s *spool) rotate() error {
	if err := s.active.Sync(); err != nil {
		return err
	}
	if err := s.active.Close(); err != nil {
		return err
	}
	s.active = nil
	return s.startSegment(s.segs[len(s.segs)-1].seq + 1)
}

// sync makes every record up to p durable. The fsync runs outside mu, so
// appends go on meanwhile; callers that arrive during an fsync wait for it
// (syncMu) and are then covered together by the next one: one fsync serves
// every append made before it (group commit).
func (s *spool) sync(p spoolPos) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if !s.synced.before(p) {
		s.mu.Unlock()
		return nil
	}
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	f, seg := s.active, s.segs[len(s.segs)-1]
	target := spoolPos{seg.seq, seg.size}
	s.mu.Unlock()
	err := f.Sync() // a rotation may close f meanwhile; it syncs it first
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced.before(p) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trailclient: spool: fsync: %w", err)
	}
	if s.synced.before(target) {
		s.synced = target
	}
	return nil
}

// available is the number of records the sender has not read yet.
func (s *spool) available() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appended - s.read
}

// appendedCount and readCount are the records appended (or found at open)
// and read by the sender so far.
func (s *spool) appendedCount() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appended
}

func (s *spool) readCount() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read
}

// counts returns the records not yet delivered and the bytes on disk.
func (s *spool) counts() (pending, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending, s.total
}

// next reads, for the sender, up to maxN records after the last one it
// read, stopping before the event bytes would pass maxBytes (one record at
// least). A record that cannot be decoded (the file changed under the
// client) ends its segment: the error names it.
func (s *spool) next(maxN, maxBytes int) ([]spooled, error) {
	var out []spooled
	bytes := 0
	for len(out) < maxN {
		s.mu.Lock()
		var seg *segment
		for _, g := range s.segs {
			if g.seq >= s.rpos.seq {
				seg = g
				break
			}
		}
		if seg == nil {
			s.mu.Unlock()
			return out, nil
		}
		if seg.seq != s.rpos.seq {
			s.rpos, s.rrecs = spoolPos{seg.seq, int64(len(segmentMagic))}, 0
		}
		limit, last := seg.size, seg == s.segs[len(s.segs)-1]
		var nextSeq uint64
		if !last {
			nextSeq = seg.seq + 1
		}
		s.mu.Unlock()
		if s.rpos.off >= limit {
			if last {
				return out, nil
			}
			s.rpos, s.rrecs = spoolPos{nextSeq, int64(len(segmentMagic))}, 0
			continue
		}
		if s.rfile == nil || s.rseq != seg.seq {
			if s.rfile != nil {
				s.rfile.Close()
			}
			f, err := os.Open(filepath.Join(s.dir, segmentName(seg.seq)))
			if err != nil {
				s.rfile = nil
				return out, fmt.Errorf("trailclient: spool: %w", err)
			}
			s.rfile, s.rseq = f, seg.seq
		}
		n := min(limit-s.rpos.off, int64(recordHeader+maxRecordBody))
		if int64(cap(s.rbuf)) < n {
			s.rbuf = make([]byte, n)
		}
		buf := s.rbuf[:n]
		if _, err := s.rfile.ReadAt(buf, s.rpos.off); err != nil && err != io.EOF {
			return out, fmt.Errorf("trailclient: spool: %w", err)
		}
		for len(out) < maxN && len(buf) > 0 {
			rec, size, err := decodeRecord(buf)
			if errors.Is(err, errShortRecord) && s.rpos.off+int64(len(buf)) < limit {
				break // the read ended inside a record, the segment does not: read on from it
			}
			if err != nil {
				return out, s.skipRest(seg, limit, err)
			}
			if len(out) > 0 && bytes+len(rec.event) > maxBytes {
				return out, nil
			}
			bytes += len(rec.event)
			rec.event = slices.Clone(rec.event)
			buf = buf[size:]
			s.rpos.off += int64(size)
			out = append(out, spooled{rec: rec, end: s.rpos})
			s.rrecs++
			s.mu.Lock()
			s.read++
			s.mu.Unlock()
		}
	}
	return out, nil
}

// skipRest sets aside the rest of a segment that changed under the client
// (a record that was whole when the spool was opened no longer decodes):
// its bytes are copied to "<segment>.bad-<offset>" and its records are no
// longer counted as waiting. The error names the file.
func (s *spool) skipRest(seg *segment, limit int64, cause error) error {
	bad := s.rpos
	path := filepath.Join(s.dir, fmt.Sprintf("%s.bad-%d", segmentName(bad.seq), bad.off))
	rest := make([]byte, limit-bad.off)
	_, err := s.rfile.ReadAt(rest, bad.off)
	if err == nil || err == io.EOF {
		err = writeFileSync(path, rest)
	}
	s.rpos.off = limit
	s.mu.Lock()
	skipped := seg.records - s.rrecs
	s.read += skipped
	s.pending -= skipped
	s.mu.Unlock()
	s.rrecs = seg.records
	if err != nil {
		return fmt.Errorf("trailclient: spool segment %s at byte %d: %w; %d records skipped, and setting them aside failed: %v", segmentName(bad.seq), bad.off, cause, skipped, err)
	}
	return fmt.Errorf("trailclient: spool segment %s at byte %d: %w; %d records set aside in %s", segmentName(bad.seq), bad.off, cause, skipped, path)
}

// commit records that every record up to end is delivered or
// dead-lettered, n of them since the last commit, and deletes the segments
// that hold nothing else.
func (s *spool) commit(end spoolPos, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending -= int64(n)
	if s.closed {
		return nil
	}
	err := writeAck(s.ack, end)
	keep := s.segs[:0]
	for i, g := range s.segs {
		last := i == len(s.segs)-1
		if !last && (g.seq < end.seq || (g.seq == end.seq && end.off >= g.size)) {
			if rerr := os.Remove(filepath.Join(s.dir, segmentName(g.seq))); rerr != nil && err == nil {
				err = rerr
			}
			s.total -= g.size
			continue
		}
		keep = append(keep, g)
	}
	clear(s.segs[len(keep):])
	s.segs = keep
	// Everything delivered, and the segment appended to holds a good part
	// of one: start a new one, so that its space comes back now rather
	// than when it fills.
	if act := s.segs[len(s.segs)-1]; err == nil && len(s.segs) == 1 && end == (spoolPos{act.seq, act.size}) && act.size >= s.segBytes/4 {
		if err = s.rotate(); err == nil {
			if err = os.Remove(filepath.Join(s.dir, segmentName(act.seq))); err == nil {
				s.total -= act.size
				s.segs = s.segs[1:]
			}
		}
	}
	if err != nil {
		return fmt.Errorf("trailclient: spool: %w", err)
	}
	return nil
}

// close syncs what was appended and releases the directory.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.active != nil {
		if err = s.active.Sync(); err == nil {
			seg := s.segs[len(s.segs)-1]
			s.synced = spoolPos{seg.seq, seg.size}
		}
	}
	s.closeFiles()
	return err
}

func (s *spool) closeFiles() {
	for _, f := range []*os.File{s.active, s.rfile, s.ack} {
		if f != nil {
			f.Close()
		}
	}
	s.active, s.rfile, s.ack = nil, nil, nil
	if s.lock != nil {
		unlockFile(s.lock)
		s.lock.Close()
		s.lock = nil
	}
}
