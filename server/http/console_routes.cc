#include "server/http/console_routes.h"

#include <httplib.h>

#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "server/http/api_routes.h"
#include "server/http/compressed_body.h"
#include "server/http/embedded_files.h"
#include "server/http/message_schema.h"

namespace hier::server {
namespace {

constexpr char kFilePattern[] = R"(/console/([A-Za-z0-9_-]+\.[a-z]+))";
constexpr char kSchemaPattern[] = R"(/v1/schema/([A-Za-z0-9_.]+))";
// Scripts, styles and images from this server only; item images may be shown from blob: URLs
// (an upload's preview) and the page may call the API on its own origin.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'";

std::string MediaTypeOf(const std::string& name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "application/javascript";  // SetBody adds the charset
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// A weak ETag from the bytes (FNV-1a): the files change only with the binary, and one tag serves
// the plain and the gzip-compressed forms.
std::string EtagOf(std::string_view bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (const char c : bytes) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return absl::StrFormat("W/\"%016x\"", hash);
}

void ServeFile(const EmbeddedFile& file, const std::string& etag, const httplib::Request& request,
               httplib::Response& response) {
  response.set_header("ETag", etag);
  response.set_header("Cache-Control", "no-cache");  // revalidated each load: 304 when unchanged
  response.set_header("X-Content-Type-Options", "nosniff");
  response.set_header("Content-Security-Policy", kContentSecurityPolicy);
  if (request.get_header_value("If-None-Match") == etag) {
    response.status = 304;
    return;
  }
  SetBody(request, response, std::string(file.bytes), MediaTypeOf(file.name));
}

}  // namespace

void AddConsoleRoutes(httplib::Server& server) {
  for (const EmbeddedFile& file : EmbeddedConsoleFiles()) {
    const std::string etag = EtagOf(file.bytes);
    const std::string path = file.name == "index.html" ? "/" : "/console/" + file.name;
    server.Get(path, [&file, etag](const httplib::Request& request, httplib::Response& response) {
      ServeFile(file, etag, request, response);
    });
  }
  server.Get(kFilePattern, [](const httplib::Request& request, httplib::Response& response) {
    WriteAnswer(request, response,
                ErrorAnswer(grpc::StatusCode::NOT_FOUND,
                            "the console has no file " + request.matches[1].str()));
  });
  server.Get(kSchemaPattern, [](const httplib::Request& request, httplib::Response& response) {
    const std::string name = request.matches[1].str();
    if (std::optional<std::string> schema = MessageSchemaJson(name)) {
      SetBody(request, response, *std::move(schema), "application/json");
      return;
    }
    WriteAnswer(request, response,
                ErrorAnswer(grpc::StatusCode::NOT_FOUND, "no message " + name + " in hier.v1"));
  });
}

}  // namespace hier::server
