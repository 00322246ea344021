package trailclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// The spool's file format. A segment file starts with segmentMagic; then
// records follow back to back, each:
//
//	uint32 big-endian  n: the length of body (at least 8, at most maxRecordBody)
//	uint32 big-endian  CRC-32C (Castagnoli) of body
//	body:  int64 big-endian enqueue time (Unix nanoseconds) | the event's JSON
//
// A record is written with one write(2) and only ever appended, so a process
// killed at any point leaves whole records behind it; only a machine that
// loses power can leave a torn last record, which the checksum finds when the
// spool is opened again (docs/client.md).
const (
	segmentMagic   = "trailspool1\n"
	recordHeader   = 8
	minRecordBody  = 8
	maxRecordBody  = 1 << 20 // an event is at most trail.MaxEventBytes (64 KiB): room to spare, not room for garbage
	segmentSuffix  = ".seg"
	deadLetterName = "dead-letter.jsonl"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errShortRecord: the bytes end before the record does — the end of what was
// written so far, or a torn write.
var errShortRecord = errors.New("trailclient: spool record: truncated")

// recordError is a record whose length or checksum is wrong.
type recordError struct{ reason string }

func (e *recordError) Error() string { return "trailclient: spool record: " + e.reason }

// spoolRecord is one decoded record.
type spoolRecord struct {
	enqueued time.Time
	event    []byte // the event's JSON, as sent
}

// appendRecord appends the record of an event (its JSON) enqueued at t.
func appendRecord(dst []byte, t time.Time, event []byte) []byte {
	n := minRecordBody + len(event)
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = binary.BigEndian.AppendUint32(dst, 0) // CRC, below
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano()))
	dst = append(dst, event...)
	body := dst[start+recordHeader:]
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// decodeRecord decodes the record at the start of b and returns it and its
// size. It returns errShortRecord if b ends inside the record and a
// *recordError if the length is out of range or the checksum does not
// match. The event bytes alias b.
func decodeRecord(b []byte) (spoolRecord, int, error) {
	if len(b) < recordHeader {
		return spoolRecord{}, 0, errShortRecord
	}
	n := binary.BigEndian.Uint32(b)
	if n < minRecordBody || n > maxRecordBody {
		return spoolRecord{}, 0, &recordError{fmt.Sprintf("length %d out of range", n)}
	}
	size := recordHeader + int(n)
	if len(b) < size {
		return spoolRecord{}, 0, errShortRecord
	}
	body := b[recordHeader:size]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[4:]); got != want {
		return spoolRecord{}, 0, &recordError{fmt.Sprintf("checksum %08x, want %08x", got, want)}
	}
	ns := int64(binary.BigEndian.Uint64(body))
	return spoolRecord{enqueued: time.Unix(0, ns), event: body[minRecordBody:]}, size, nil
}
