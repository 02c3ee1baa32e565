#include "server/http/compressed_body.h"

#include <httplib.h>
#include <zlib.h>

#include <cstdlib>

namespace hier::server {
namespace {

// Whether `request` accepts gzip: "gzip" among Accept-Encoding's codings, its q above 0.
bool AcceptsGzip(const httplib::Request& request) {
  const std::string accepted = request.get_header_value("Accept-Encoding");
  const size_t at = accepted.find("gzip");
  if (at == std::string::npos) return false;
  const std::string coding = accepted.substr(at, accepted.find(',', at) - at);
  const size_t q = coding.find("q=");
  return q == std::string::npos || std::strtod(coding.c_str() + q + 2, nullptr) > 0;
}

}  // namespace

std::string Gzip(std::string_view bytes, int level) {
  z_stream stream{};
  // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&stream, bytes.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = deflate(&stream, Z_FINISH);  // deflateBound leaves room for all of it
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return result == Z_STREAM_END ? out : std::string();
}

void SetBody(const httplib::Request& request, httplib::Response& response, std::string body,
             std::string_view media_type) {
  const bool ours = media_type == "application/json" || media_type == "application/javascript";
  if (!ours) {
    response.set_content(std::move(body), std::string(media_type));
    return;
  }
  // The charset parameter also keeps cpp-httplib from compressing the body a second time.
  const std::string type = std::string(media_type) + "; charset=utf-8";
  response.set_header("Vary", "Accept-Encoding");
  if (body.size() >= kCompressFromBytes && AcceptsGzip(request)) {
    std::string compressed = Gzip(body, Z_BEST_SPEED);
    if (!compressed.empty()) {
      response.set_header("Content-Encoding", "gzip");
      response.set_content(std::move(compressed), type);
      return;
    }
  }
  response.set_content(std::move(body), type);
}

}  // namespace hier::server
