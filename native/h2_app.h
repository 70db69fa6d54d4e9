// The application side of one HTTP/2 stream (RFC 9113 §8.1): the AppSink the app runner
// (CGI, FastCGI) writes its response to, and the queue its request body comes from. The
// same AppRequest event, Status/Location rules and limits as HTTP/1.1 (the runner owns
// those); what differs is only the wire:
// - request body: DATA bytes are queued per stream and the stream's flow-control window
//   is given back (nghttp2_session_consume_stream) only as the application takes them, so
//   a paused application holds at most one window per stream (the connection window is
//   given back on arrival);
// - response body: a deferred data source; a write above kHighWater returns false (the
//   runner stops reading the script/backend) until the client's window lets it drain;
// - header names lower-cased, connection-specific fields dropped (RFC 9113 §8.2.2), an NPH
//   script's head turned into :status and fields (its chunked coding undone);
// - what would close an HTTP/1.1 connection (a cut-short body) resets this stream only.
#pragma once
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "app_sink.h"
#include "chunked.h"
#include "server.h"


namespace lisod {

class H2Session;

class H2App final : public AppSink {
 public:
  static constexpr size_t kHighWater = 64 * 1024;  // response bytes buffered per stream

  // Registers with the server (request.id is set here). Nothing reaches JavaScript until
  // pump(): the event is sent from the connection's step, never inside nghttp2.
  H2App(H2Session* session, int32_t stream_id, bool head_only, AppRequest request);
  ~H2App() override;  // unregisters
  H2App(const H2App&) = delete;
  H2App& operator=(const H2App&) = delete;

  uint32_t id() const { return id_; }
  int status() const { return status_; }
  uint64_t sent() const { return sent_; }

  // DATA payload of the request (the connection window is already given back).
  void bodyData(const uint8_t* data, size_t len);
  void bodyEnd();  // END_STREAM
  // From the connection's step: the request event, queued body bytes (while not paused),
  // the end of the body and drain events go to the application.
  void pump();
  // The stream is closing (client reset, connection gone): if the application has not
  // ended its response it gets a close event (the runner kills the script or closes the
  // backend connection). Idempotent; the sink is deaf afterwards.
  void detach();
  // Timeouts (sweep): the request body stalls (body_timeout, body_total_timeout; the
  // application's pauses excluded), or buffered response bytes find no window for
  // send_timeout. Resets or answers this stream only; true when it did.
  bool expire(uint64_t now_ms);

  // AppSink
  void appBegin(int status, const std::string& reason, const std::vector<std::string>& headers) override;
  void appBeginRaw(bool keep_alive) override;
  bool appWrite(const char* data, size_t len) override;
  void appEnd() override;
  void appAbort() override;
  void appPauseBody(bool paused) override;
  int accessStatus(std::string_view target) override;

 private:
  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                       nghttp2_data_source* source, void*);
  void begin(int status, const std::vector<std::pair<std::string, std::string>>& fields);
  bool beginFromNph();  // raw_head_ holds a complete NPH head: submit it; false when unusable
  void append(const char* data, size_t len);
  void resume();  // the data source was deferred and has something to say now
  void reset();   // RST_STREAM INTERNAL_ERROR: the response cannot be completed
  bool live() const { return !detached_ && !ended_; }

  H2Session* session_;
  Server* server_;
  int32_t stream_;
  uint32_t id_;
  bool head_only_;
  AppRequest request_;  // sent by the first pump()
  bool started_ = false, detached_ = false;
  // request body
  std::string in_;
  uint64_t body_bytes_ = 0;
  bool body_end_ = false, body_end_sent_ = false, paused_ = false;
  uint64_t body_deadline_ms_ = 0, last_body_ms_ = 0, paused_at_ms_ = 0;
  // response
  bool begun_ = false, ended_ = false, aborted_ = false, has_body_ = false;
  bool raw_ = false, deferred_ = false, wants_drain_ = false, drain_due_ = false;
  std::string raw_head_;                  // NPH head bytes until its blank line
  std::optional<ChunkedDecoder> chunked_;  // an NPH body in the chunked coding
  std::string out_;
  size_t out_off_ = 0;
  uint64_t length_left_ = UINT64_MAX;  // Content-Length still owed (UINT64_MAX: none given)
  uint64_t progress_ms_ = 0;
  int status_ = 0;
  uint64_t sent_ = 0;
};

}  // namespace lisod
