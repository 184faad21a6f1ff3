// An SQLite VFS for the recorder's connection: the default one, except that the frames a
// transaction appends to its WAL file collect in memory and reach the file in one write when
// the transaction's commit frame is complete. SQLite writes every frame as two writes, a
// 24-octet header and the page; a recorded 4 KiB message commits about nine frames, and those
// eighteen small writes were over a quarter of the storage thread's time (docs/benchmarks.md).
//
// Readers in other processes find a frame through the WAL index, which SQLite updates only
// after the last write of a commit; as the batch is written before that write returns, they
// never look for octets still held here. A crash loses what an uncommitted transaction had
// written, which WAL recovery ignores anyway (its frames lack a commit frame).
//
// It also answers SQLITE_FCNTL_HAS_MOVED for the WAL file (the default VFS does for a database
// file only): whether its path still names the file opened, one stat (Database::check_wal_path).
#pragma once

namespace mailtap::storage {

// The VFS's name for sqlite3_open_v2, registered on the first call; nullptr if SQLite could not
// register it (the caller then opens with the default VFS).
const char* wal_write_batching_vfs();

}  // namespace mailtap::storage
