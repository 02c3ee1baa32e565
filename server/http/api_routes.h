// The routes of the HTTP/JSON API: POST /v1/<package.Service>/<Method> (e.g.
// /v1/hier.v1.Retrieval/Search) answered through the JSON gateway, streaming methods as NDJSON
// (one JSON object per line, both ways); GET /v1/items/<id>/image, an item's stored image as
// itself (GetItemImage), for <img> and caches; other HTTP methods on the method paths 405, unknown
// paths 404,
// and every error, the server's own included (a body over the limit, a malformed request), as
// the gateway's JSON error body.
//
// Headers read: Authorization (passed on as the gRPC metadata of that name), Grpc-Timeout (the
// call's deadline, in gRPC's syntax: "5S", "250m"), Content-Type (application/json, or
// application/x-ndjson for a client stream; none for an empty body).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string_view>

#include "server/http/json_gateway.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace hier::server {

// Sets the response's status, body and content type to the answer's (the body compressed when
// the request allows, compressed_body.h).
void WriteAnswer(const httplib::Request& request, httplib::Response& response,
                 const HttpAnswer& answer);

// A Grpc-Timeout value ("<1-8 digits><H|M|S|m|u|n>") as a duration, or nothing when malformed.
std::optional<std::chrono::milliseconds> ParseGrpcTimeout(std::string_view value);

// How many streams the HTTP API relays at once: each holds one of the listener's threads for as
// long as it lasts (a WatchJob, as long as its job), so beyond `max` they are refused
// RESOURCE_EXHAUSTED and unary calls always find a thread.
struct StreamSlots {
  int max = 4;
  std::atomic<int> open{0};
};

// Registers the routes; `gateway` and `slots` must outlive the server.
void AddApiRoutes(httplib::Server& server, const JsonGateway& gateway, StreamSlots& slots);

}  // namespace hier::server
