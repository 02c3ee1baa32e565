// The web console's routes: GET / (the console's page) and GET /console/<file> (its scripts and
// styles, built into the binary), each with its media type, an ETag and a Content-Security-Policy
// that lets the page load nothing from anywhere but this server; and GET /v1/schema/<message>,
// the description of an API message a form is built from (message_schema.h).
#pragma once

namespace httplib {
class Server;
}

namespace hier::server {

void AddConsoleRoutes(httplib::Server& server);

}  // namespace hier::server
