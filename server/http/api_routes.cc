#include "server/http/api_routes.h"

#include <google/protobuf/descriptor.h>
#include <httplib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/numbers.h"
#include "hier/v1/retrieval.pb.h"
#include "server/http/compressed_body.h"

namespace hier::server {
namespace {

constexpr char kMethodPattern[] = R"(/v1/([A-Za-z0-9_.]+/[A-Za-z0-9_]+))";
constexpr char kItemImagePattern[] = R"(/v1/items/(-?[0-9]{1,19})/image)";

// The media type of a Content-Type header, without parameters, lower-case.
std::string MediaType(const std::string& content_type) {
  std::string type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type;
}

// The 415 answer when the body's Content-Type is not one the method reads, else nothing.
std::optional<HttpAnswer> CheckContentType(const httplib::Request& request,
                                           const google::protobuf::MethodDescriptor& method) {
  if (request.body.empty()) return std::nullopt;  // the empty message, whatever the label says
  const std::string type = MediaType(request.get_header_value("Content-Type"));
  if (type == "application/json") return std::nullopt;
  if (type == "application/x-ndjson" && method.client_streaming()) return std::nullopt;
  return ErrorAnswer(grpc::StatusCode::INVALID_ARGUMENT,
                     "Content-Type: \"" + request.get_header_value("Content-Type") + "\" is not " +
                         (method.client_streaming() ? "application/json or application/x-ndjson"
                                                    : "application/json"),
                     415);
}

// Answers one call of `method`: unary as one JSON object, streaming as NDJSON.
void Call(const JsonGateway& gateway, StreamSlots& slots,
          const google::protobuf::MethodDescriptor& method, const httplib::Request& request,
          httplib::Response& response) {
  if (std::optional<HttpAnswer> refused = CheckContentType(request, method)) {
    return WriteAnswer(request, response, *refused);
  }
  GatewayCall call;
  call.authorization = request.get_header_value("Authorization");
  if (request.has_header("Grpc-Timeout")) {
    call.timeout = ParseGrpcTimeout(request.get_header_value("Grpc-Timeout"));
    if (!call.timeout) {
      return WriteAnswer(request, response,
                         ErrorAnswer(grpc::StatusCode::INVALID_ARGUMENT,
                                     "Grpc-Timeout: \"" + request.get_header_value("Grpc-Timeout") +
                                         "\" is not <1-8 digits><H|M|S|m|u|n>"));
    }
  }
  if (!method.client_streaming() && !method.server_streaming()) {
    return WriteAnswer(request, response, gateway.Unary(method, request.body, call));
  }
  // A slot is taken here and given back when the stream's response is done with (the releaser).
  if (slots.open.fetch_add(1) >= slots.max) {
    slots.open.fetch_sub(1);
    return WriteAnswer(request, response,
                       ErrorAnswer(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                   "at most " + std::to_string(slots.max) +
                                       " streams at once over HTTP (half of --http-threads)"));
  }
  std::variant<HttpAnswer, std::unique_ptr<JsonGateway::Stream>> opened =
      gateway.OpenStream(method, request.body, call);
  if (auto* answer = std::get_if<HttpAnswer>(&opened)) {
    slots.open.fetch_sub(1);
    return WriteAnswer(request, response, *answer);
  }
  std::shared_ptr<JsonGateway::Stream> stream =
      std::move(std::get<std::unique_ptr<JsonGateway::Stream>>(opened));
  response.set_header("Cache-Control", "no-store");
  response.set_chunked_content_provider(
      "application/x-ndjson",
      [stream](size_t, httplib::DataSink& sink) {
        std::string line;
        const bool more = stream->Next(&line);
        if (!line.empty() && !sink.write(line.data(), line.size())) {
          stream->Cancel();
          return false;
        }
        if (!more) sink.done();
        return true;
      },
      [stream, &slots](bool success) {
        if (!success) stream->Cancel();
        slots.open.fetch_sub(1);
      });
}

// GET /v1/items/<id>/image: the item's stored source image with its media type, an ETag (its
// SHA-256) that a conditional request revalidates (304), and a short private cache life.
void ItemImage(const JsonGateway& gateway, const httplib::Request& request,
               httplib::Response& response) {
  hier::v1::GetItemRequest item;
  int64_t id = 0;
  if (!absl::SimpleAtoi(request.matches[1].str(), &id)) {
    return WriteAnswer(request, response,
                       ErrorAnswer(grpc::StatusCode::INVALID_ARGUMENT, "id: not a 64-bit integer"));
  }
  item.set_id(id);
  GatewayCall call;
  call.authorization = request.get_header_value("Authorization");
  hier::v1::ItemImage image;
  const grpc::Status status =
      gateway.CallUnary(*gateway.FindMethod("hier.v1.Retrieval/GetItemImage"), item, &image, call);
  if (!status.ok()) {
    return WriteAnswer(request, response, ErrorAnswer(status.error_code(), status.error_message()));
  }
  const std::string etag = "\"" + image.sha256() + "\"";
  response.set_header("ETag", etag);
  response.set_header("Cache-Control", "private, max-age=60");
  if (request.get_header_value("If-None-Match") == etag) {
    response.status = 304;
    return;
  }
  response.set_content(image.image(), image.content_type());
}

// What an error status httplib answers by itself means, in the API's words.
HttpAnswer OwnError(int status) {
  switch (status) {
    case 404:
      return ErrorAnswer(grpc::StatusCode::NOT_FOUND,
                         "no such path (the API is POST /v1/<package.Service>/<Method>, e.g. "
                         "/v1/hier.v1.Retrieval/Search)");
    case 413:
      return ErrorAnswer(grpc::StatusCode::RESOURCE_EXHAUSTED,
                         "request body: larger than this server takes", 413);
    case 414:
      return ErrorAnswer(grpc::StatusCode::INVALID_ARGUMENT, "the URL is too long", 414);
    default:
      return ErrorAnswer(grpc::StatusCode::INVALID_ARGUMENT,
                         "malformed HTTP request (a POST needs a Content-Length, even of 0: "
                         "curl -d '{}')",
                         status);
  }
}

}  // namespace

void WriteAnswer(const httplib::Request& request, httplib::Response& response,
                 const HttpAnswer& answer) {
  response.status = answer.status;
  SetBody(request, response, answer.body, answer.content_type);
}

std::optional<std::chrono::milliseconds> ParseGrpcTimeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  int64_t amount = 0;
  for (const char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    amount = amount * 10 + (c - '0');
  }
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  switch (value.back()) {
    case 'H':
      return duration_cast<milliseconds>(std::chrono::hours(amount));
    case 'M':
      return duration_cast<milliseconds>(std::chrono::minutes(amount));
    case 'S':
      return duration_cast<milliseconds>(std::chrono::seconds(amount));
    case 'm':
      return milliseconds(amount);
    case 'u':
      return duration_cast<milliseconds>(std::chrono::microseconds(amount));
    case 'n':
      return duration_cast<milliseconds>(std::chrono::nanoseconds(amount));
    default:
      return std::nullopt;
  }
}

void AddApiRoutes(httplib::Server& server, const JsonGateway& gateway, StreamSlots& slots) {
  server.Post(kMethodPattern,
              [&gateway, &slots](const httplib::Request& request, httplib::Response& response) {
                const std::string name = request.matches[1].str();
                const google::protobuf::MethodDescriptor* method = gateway.FindMethod(name);
                if (method == nullptr) {
                  return WriteAnswer(request, response,
                                     ErrorAnswer(grpc::StatusCode::NOT_FOUND,
                                                 "no method " + name +
                                                     " (POST /v1/<package.Service>/<Method>, e.g. "
                                                     "/v1/hier.v1.Retrieval/Search)"));
                }
                Call(gateway, slots, *method, request, response);
              });
  server.Get(kItemImagePattern,
             [&gateway](const httplib::Request& request, httplib::Response& response) {
               ItemImage(gateway, request, response);
             });
  const auto post_only = [](const httplib::Request& request, httplib::Response& response) {
    response.set_header("Allow", "POST");
    WriteAnswer(request, response,
                ErrorAnswer(grpc::StatusCode::UNIMPLEMENTED,
                            "the API's methods are called with POST", 405));
  };
  server.Get(kMethodPattern, post_only);
  server.Put(kMethodPattern, post_only);
  server.Delete(kMethodPattern, post_only);
  server.Patch(kMethodPattern, post_only);
  server.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (response.body.empty()) WriteAnswer(request, response, OwnError(response.status));
  });
  server.set_exception_handler([](const httplib::Request& request, httplib::Response& response,
                                  std::exception_ptr) {
    WriteAnswer(request, response, ErrorAnswer(grpc::StatusCode::INTERNAL, "the request failed"));
  });
}

}  // namespace hier::server
