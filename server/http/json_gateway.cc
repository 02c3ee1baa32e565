#include "server/http/json_gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>
#include <utility>

#include "nlohmann/json.hpp"

namespace hier::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

// The name of a gRPC code as its enum spells it ("INVALID_ARGUMENT").
const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",       "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < static_cast<int>(std::size(kNames)) ? kNames[index] : "UNKNOWN";
}

std::string ErrorJson(grpc::StatusCode code, std::string_view message) {
  return nlohmann::json{{"code", static_cast<int>(code)},
                        {"status", CodeName(code)},
                        {"message", message}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::unique_ptr<Message> NewMessage(const Descriptor& type) {
  return std::unique_ptr<Message>(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(&type)->New());
}

grpc::ByteBuffer ToBuffer(const Message& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

// Parses `buffer` into `*message`; whether the bytes parsed.
bool ParseBuffer(const grpc::ByteBuffer& buffer, Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return message->ParseFromString(bytes);
}

// The message of `type` in `buffer`, or null when the bytes do not parse.
std::unique_ptr<Message> FromBuffer(const grpc::ByteBuffer& buffer, const Descriptor& type) {
  std::unique_ptr<Message> message = NewMessage(type);
  if (!ParseBuffer(buffer, message.get())) return nullptr;
  return message;
}

// Protobuf's JSON mapping with the .proto's field names, and fields at their default shown, so
// that a reader sees every field of the answer.
std::string ToJson(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return ErrorJson(grpc::StatusCode::INTERNAL, "the answer could not be written as JSON");
  }
  return json;
}

// `json` parsed as a `type` message (empty: the empty message), or null with `*error` set to
// protobuf's description of what is wrong (which names the field).
std::unique_ptr<Message> ParseRequest(const Descriptor& type, std::string_view json,
                                      std::string* error) {
  std::unique_ptr<Message> message = NewMessage(type);
  if (json.find_first_not_of(" \t\r\n") == std::string_view::npos) return message;
  const auto status = google::protobuf::util::JsonStringToMessage(
      std::string(json), message.get(), google::protobuf::util::JsonParseOptions());
  if (!status.ok()) {
    *error = std::string(status.message());
    return nullptr;
  }
  return message;
}

// Waits for the one operation in flight on `queue`; whether it succeeded.
bool Await(grpc::CompletionQueue& queue) {
  void* tag = nullptr;
  bool ok = false;
  return queue.Next(&tag, &ok) && ok;
}

// Shuts `queue` down and takes what is left in it, as the CompletionQueue contract asks.
void Drain(grpc::CompletionQueue& queue) {
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }
}

std::string MethodPath(const MethodDescriptor& method) {
  return "/" + method.service()->full_name() + "/" + method.name();
}

// An Authorization header gRPC can carry as metadata: printable ASCII only.
bool IsLegalMetadata(std::string_view value) {
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

}  // namespace

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:  // UNKNOWN, INTERNAL, DATA_LOSS
      return 500;
  }
}

HttpAnswer ErrorAnswer(grpc::StatusCode code, std::string_view message, int http_status) {
  return HttpAnswer{http_status != 0 ? http_status : HttpStatusOf(code), "application/json",
                    ErrorJson(code, message)};
}

JsonGateway::JsonGateway(std::shared_ptr<grpc::Channel> channel, std::vector<std::string> services)
    : channel_(std::move(channel)), services_(std::move(services)), stub_(channel_) {}

const MethodDescriptor* JsonGateway::FindMethod(std::string_view name) const {
  const size_t slash = name.rfind('/');
  if (slash == std::string_view::npos) return nullptr;
  const std::string service(name.substr(0, slash));
  if (std::find(services_.begin(), services_.end(), service) == services_.end()) return nullptr;
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  if (descriptor == nullptr) return nullptr;
  return descriptor->FindMethodByName(std::string(name.substr(slash + 1)));
}

void JsonGateway::Prepare(grpc::ClientContext& context, const GatewayCall& call) const {
  if (!call.authorization.empty()) context.AddMetadata("authorization", call.authorization);
  if (call.timeout) context.set_deadline(std::chrono::system_clock::now() + *call.timeout);
}

grpc::Status JsonGateway::CallUnary(const MethodDescriptor& method, const Message& request,
                                    Message* response, const GatewayCall& call) const {
  if (!IsLegalMetadata(call.authorization)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "Authorization: not a header value gRPC can carry (printable ASCII only)");
  }
  grpc::ClientContext context;
  Prepare(context, call);
  grpc::CompletionQueue queue;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader =
      stub_.PrepareUnaryCall(&context, MethodPath(method), ToBuffer(request), &queue);
  reader->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  reader->Finish(&reply, &status, &reply);
  Await(queue);
  Drain(queue);
  if (!status.ok()) return status;
  if (!ParseBuffer(reply, response)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "the answer did not parse as its message");
  }
  return grpc::Status::OK;
}

HttpAnswer JsonGateway::Unary(const MethodDescriptor& method, std::string_view json,
                              const GatewayCall& call) const {
  std::string error;
  const std::unique_ptr<Message> request = ParseRequest(*method.input_type(), json, &error);
  if (request == nullptr) {
    return ErrorAnswer(grpc::StatusCode::INVALID_ARGUMENT, "request body: " + error);
  }
  const std::unique_ptr<Message> response = NewMessage(*method.output_type());
  const grpc::Status status = CallUnary(method, *request, response.get(), call);
  if (!status.ok()) return ErrorAnswer(status.error_code(), status.error_message());
  return HttpAnswer{200, "application/json", ToJson(*response)};
}

// One streaming call on its own completion queue, one operation in flight at a time.
struct JsonGateway::Stream::Call {
  grpc::ClientContext context;
  grpc::CompletionQueue queue;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream;
  const Descriptor* output = nullptr;
  std::optional<std::string> first_line;  // read by OpenStream to learn the call is going
  bool finished = false;
  grpc::Status status;

  // The next answer message, or null once the stream has ended (then `status` holds how).
  std::unique_ptr<Message> Read() {
    grpc::ByteBuffer buffer;
    stream->Read(&buffer, &buffer);
    if (Await(queue)) {
      std::unique_ptr<Message> message = FromBuffer(buffer, *output);
      if (message != nullptr) return message;
      context.TryCancel();
      Finish();
      status = grpc::Status(grpc::StatusCode::INTERNAL, "an answer did not parse as its message");
      return nullptr;
    }
    Finish();
    return nullptr;
  }

  void Finish() {
    if (finished) return;
    stream->Finish(&status, &status);
    Await(queue);
    finished = true;
  }

  ~Call() {
    if (stream != nullptr && !finished) {
      context.TryCancel();
      Finish();
    }
    Drain(queue);
  }
};

JsonGateway::Stream::Stream(std::unique_ptr<Call> call) : call_(std::move(call)) {}
JsonGateway::Stream::~Stream() = default;

bool JsonGateway::Stream::Next(std::string* line) {
  line->clear();
  if (call_->first_line) {
    *line = std::move(*call_->first_line);
    call_->first_line.reset();
    return true;
  }
  if (!call_->finished) {
    if (std::unique_ptr<Message> message = call_->Read()) {
      *line = ToJson(*message) + "\n";
      return true;
    }
  }
  if (!call_->status.ok()) {
    *line = "{\"error\":" + ErrorJson(call_->status.error_code(), call_->status.error_message()) +
            "}\n";
  }
  return false;
}

void JsonGateway::Stream::Cancel() { call_->context.TryCancel(); }

std::variant<HttpAnswer, std::unique_ptr<JsonGateway::Stream>> JsonGateway::OpenStream(
    const MethodDescriptor& method, std::string_view json_lines, const GatewayCall& call) const {
  if (!IsLegalMetadata(call.authorization)) {
    return ErrorAnswer(grpc::StatusCode::UNAUTHENTICATED,
                       "Authorization: not a header value gRPC can carry (printable ASCII only)");
  }
  // Every request message parsed before the call starts, so a bad line sends nothing.
  std::vector<std::unique_ptr<Message>> requests;
  size_t line_number = 0;
  for (size_t start = 0; start < json_lines.size();) {
    size_t end = json_lines.find('\n', start);
    if (end == std::string_view::npos) end = json_lines.size();
    const std::string_view line = json_lines.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    std::string error;
    std::unique_ptr<Message> request = ParseRequest(*method.input_type(), line, &error);
    if (request == nullptr) {
      return ErrorAnswer(grpc::StatusCode::INVALID_ARGUMENT,
                         "request body, line " + std::to_string(line_number) + ": " + error);
    }
    requests.push_back(std::move(request));
  }
  if (!method.client_streaming()) {
    if (requests.size() > 1) {
      return ErrorAnswer(grpc::StatusCode::INVALID_ARGUMENT,
                         "request body: " + method.name() + " takes one request message, got " +
                             std::to_string(requests.size()));
    }
    if (requests.empty()) requests.push_back(NewMessage(*method.input_type()));
  }

  auto state = std::make_unique<Stream::Call>();
  state->output = method.output_type();
  Prepare(state->context, call);
  state->stream = stub_.PrepareCall(&state->context, MethodPath(method), &state->queue);
  state->stream->StartCall(state.get());
  bool open = Await(state->queue);
  for (size_t i = 0; open && i < requests.size(); ++i) {
    state->stream->Write(ToBuffer(*requests[i]), state.get());
    open = Await(state->queue);
  }
  if (open) {
    state->stream->WritesDone(state.get());
    Await(state->queue);
  }
  // The first answer, or how the call ended without one.
  if (std::unique_ptr<Message> first = state->Read()) {
    state->first_line = ToJson(*first) + "\n";
  } else if (!state->status.ok()) {
    return ErrorAnswer(state->status.error_code(), state->status.error_message());
  }
  return std::unique_ptr<Stream>(new Stream(std::move(state)));
}

}  // namespace hier::server
