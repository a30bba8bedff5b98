package store

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func BenchmarkZZWrite(b *testing.B) {
	s, err := Open(b.TempDir(), Options{NoSync: true, CheckpointInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	_ = filepath.Join
	seq := uint64(1)
	now := time.Now().UnixNano()
	b.ResetTimer()
	for n := 0; n < b.N; n += 9000 {
		items := make([]*ckItem, 0, 9000)
		for i := range 9000 {
			id := "p" + strconv.FormatUint(seq, 10) + "-abcdefgh"
			items = append(items, &ckItem{id: id, fresh: true, e: dbEntry{seq: seq, state: StateQueued, received: now + int64(i),
				meta: ref{1, int64(seq) * 1000}, metaLen: 300, metaCRC: 12345, body: ref{1, int64(seq)*1000 + 300}, bodyLen: 500}})
			seq++
		}
		m := ckMeta{nextSeq: seq}
		if err := writeCheckpoint(s.db, items, nil, m); err != nil {
			b.Fatal(err)
		}
	}
}
