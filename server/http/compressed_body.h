// Response bodies gzip-compressed (zlib's fastest level) for clients that accept it. Left alone,
// Debian's cpp-httplib compresses JSON and text/* answers itself with Brotli at its default quality
// (11), about 0.65 MB/s here: a 900 KB hierarchy took 1.4 s to answer instead of 0.12 s. Bodies set
// through SetBody carry a media type that cpp-httplib does not compress (a charset parameter
// added), so each is compressed once, here; text/html and text/css, which it compresses by prefix,
// are the console's two small files it still handles.
#pragma once

#include <string>
#include <string_view>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace hier::server {

// Bodies shorter than this go as they are (a gzip header and a round of zlib cost more than the
// bytes saved).
inline constexpr size_t kCompressFromBytes = 1024;

// Sets `response`'s body and Content-Type ("<media_type>; charset=utf-8" for JSON and JavaScript),
// gzip-compressed with Content-Encoding and Vary headers when the request's Accept-Encoding allows
// gzip and the body is at least kCompressFromBytes long.
void SetBody(const httplib::Request& request, httplib::Response& response, std::string body,
             std::string_view media_type);

// `bytes` gzip-compressed (RFC 1952), at zlib's level `level`.
std::string Gzip(std::string_view bytes, int level);

}  // namespace hier::server
