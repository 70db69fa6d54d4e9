#include "cgi_output_addon.h"

#include <cstring>
#include <vector>

#include "cgi_output.h"

namespace lisod {
namespace {

constexpr size_t kFixed = 13;  // layout slots before the fields

size_t countLineFeeds(const char* p, size_t n) {
  size_t count = 0;
  for (const char* end = p + n; (p = static_cast<const char*>(std::memchr(p, '\n', end - p))) != nullptr; ++p) ++count;
  return count;
}

Napi::Value layout(Napi::Env env, const char* base, long head, const CgiHead& h) {
  Napi::Int32Array out = Napi::Int32Array::New(env, kFixed + 4 * h.num_fields);
  auto offset = [&](std::string_view v, bool present) { return present ? static_cast<int32_t>(v.data() - base) : -1; };
  auto put = [&](size_t i, std::string_view v, bool present) {
    out[i] = offset(v, present);
    out[i + 1] = present ? static_cast<int32_t>(v.data() - base + v.size()) : -1;
  };
  out[0] = static_cast<int32_t>(head);
  out[1] = static_cast<int32_t>(h.kind);
  out[2] = static_cast<int32_t>(h.error);
  put(3, h.error_text, h.error_text.data() != nullptr);
  out[5] = h.status;
  out[6] = h.has_status;
  put(7, h.reason, h.reason.data() != nullptr);
  out[9] = h.has_location;
  put(10, h.location, h.has_location);
  out[12] = static_cast<int32_t>(h.num_fields);
  for (size_t i = 0; i < h.num_fields; ++i) {
    put(kFixed + 4 * i, h.fields[i].name, true);
    put(kFixed + 4 * i + 2, h.fields[i].value, true);
  }
  return out;
}

Napi::Value parseHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "parseCgiHead(buf, maxHead, scanned): buf must be a Buffer");
  Napi::Buffer<char> buf = info[0].As<Napi::Buffer<char>>();
  const size_t max_head = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  const size_t scanned = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
  std::vector<CgiField> fields(countLineFeeds(buf.Data(), buf.Length()));
  CgiHead head;
  head.fields = fields.data();
  head.num_fields = fields.size();
  long r = parseCgiHead(buf.Data(), buf.Length(), max_head, scanned, &head);
  if (r == kCgiIncomplete) return env.Null();
  return layout(env, buf.Data(), r, head);
}

Napi::Value interpretLines(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer() || !info[1].IsTypedArray()) {
    throw Napi::TypeError::New(env, "interpretCgiLines(buf, lineEnds): a Buffer and a Uint32Array");
  }
  Napi::Buffer<char> buf = info[0].As<Napi::Buffer<char>>();
  Napi::Uint32Array ends = info[1].As<Napi::Uint32Array>();
  std::vector<std::string_view> lines;
  lines.reserve(ends.ElementLength());
  size_t start = 0;
  for (size_t i = 0; i < ends.ElementLength(); ++i) {
    const size_t end = ends[i];
    if (end < start || end > buf.Length()) throw Napi::RangeError::New(env, "interpretCgiLines: line ends out of order");
    lines.emplace_back(buf.Data() + start, end - start);
    start = end;
  }
  std::vector<CgiField> fields(lines.size());
  CgiHead head;
  head.fields = fields.data();
  head.num_fields = fields.size();
  interpretCgiLines(lines.data(), lines.size(), &head);
  return layout(env, buf.Data(), 0, head);
}

}  // namespace

void initCgiOutput(Napi::Env env, Napi::Object exports) {
  exports.Set("parseCgiHead", Napi::Function::New(env, parseHead, "parseCgiHead"));
  exports.Set("interpretCgiLines", Napi::Function::New(env, interpretLines, "interpretCgiLines"));
}

}  // namespace lisod
