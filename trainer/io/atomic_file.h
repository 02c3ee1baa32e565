// Durable file publication: files and directories appear under their final names only when
// complete (temp, fsync, rename, fsync the directory), so a crash never leaves a torn artifact and
// nothing acknowledged is lost.
//
// Every function throws c10::Error naming the path and strerror(errno) on failure.
#pragma once

#include <string>
#include <string_view>

namespace hier::io {

// How temp files begin; one left behind by a crash can be removed.
inline constexpr char kTempFilePrefix[] = ".tmp-";

// Replaces `path` with `bytes` atomically: readers see the old content or the new, never a mix.
// Writes a ".tmp-<pid>-<counter>" file in the same directory, fsyncs it, renames it over `path`
// and fsyncs the directory; the temp file is removed on failure.
void WriteFileAtomically(const std::string& path, std::string_view bytes);

// Makes the entries of `dir` (creations, renames, removals) durable.
void SyncDirectory(const std::string& dir);

// Makes the content of the file at `path` durable.
void SyncFile(const std::string& path);

// Publishes a directory built under a staging name: fsyncs every regular file below
// `staging_dir` and every directory (itself included), renames it to `final_dir` and fsyncs the
// parent directories. Refuses an existing `final_dir` rather than replacing or merging into it.
void PublishDirectory(const std::string& staging_dir, const std::string& final_dir);

// Appends `line` and a newline to `path` (created if missing) in a single O_APPEND write, so
// concurrent appenders never interleave within a line; fsyncs the file (and the directory when
// the file was created) when `sync`. `line` must not contain a newline.
void AppendLine(const std::string& path, std::string_view line, bool sync);

// The whole content of the file at `path`.
std::string ReadFile(const std::string& path);

}  // namespace hier::io
