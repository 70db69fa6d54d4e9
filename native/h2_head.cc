// H2Head: a ResponsePlan's head as nghttp2_nv, and the per-entry cache of whole-file fields.
#include "h2_head.h"

#include <charconv>

#include "file_cache.h"
#include "response.h"
#include "response_plan.h"

namespace lisod {
namespace {

// The lower-case form (RFC 9113 §8.2.1) of the names response_plan.cc uses, so the common
// answers are not lower-cased byte by byte; "" for any other name.
std::string_view lowerPlanName(std::string_view name) {
  static constexpr std::string_view kNames[][2] = {
      {"Content-Type", "content-type"},   {"Last-Modified", "last-modified"},
      {"ETag", "etag"},                   {"Vary", "vary"},
      {"Accept-Ranges", "accept-ranges"}, {"Content-Encoding", "content-encoding"},
      {"Content-Range", "content-range"}, {"Location", "location"},
      {"Allow", "allow"},
  };
  for (const auto& [canonical, lower] : kNames) {
    if (name == canonical) return lower;
  }
  return {};
}

// The fields of plan, a whole-file 200 (addWholeFileHeaders), lower-cased and checked once
// per entry: an entry is immutable but for these formatting caches, which its one event
// loop fills, and has one coding (a compressed entry is its own entry).
const FileEntry::CachedFields& wholeFileFields(const ResponsePlan& plan) {
  const FileEntry& f = *plan.whole_file;
  FileEntry::CachedFields& c = f.h2_fields;
  if (c.built && c.vary == plan.vary) return c;
  ResponsePlan p;
  p.whole_file = &f;
  p.vary = plan.vary;
  p.coding = plan.coding;
  addWholeFileHeaders(p);
  c.fields.clear();
  for (auto& [name, value] : p.headers) {
    std::string_view lower = lowerPlanName(name);  // every whole-file name is a known one
    if (!lower.empty() && checkHeaderValue(value) == nullptr) c.fields.emplace_back(lower, std::move(value));
  }
  c.built = true;
  c.vary = plan.vary;
  return c;
}

}  // namespace

void H2Head::add(std::string_view n, std::string_view v, bool static_name) {
  if (count_ == kMaxFields) return;
  nv_[count_++] = {reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                   static_cast<uint8_t>(static_name ? NGHTTP2_NV_FLAG_NO_COPY_NAME : NGHTTP2_NV_FLAG_NONE)};
}

H2Head::H2Head(const ResponsePlan& plan, std::string_view date) {
  char* status_end = std::to_chars(status_, status_ + sizeof status_, plan.status).ptr;
  add(":status", std::string_view(status_, status_end - status_));
  add("server", kServerSoftware);
  add("date", date);
  if (plan.whole_file != nullptr && plan.headers.empty()) {  // planStatic left them to us
    for (const auto& [name, value] : wholeFileFields(plan).fields) add(name, value);
  }
  for (const auto& [name, value] : plan.headers) {
    if (std::string_view known = lowerPlanName(name); !known.empty()) {  // a constant: only the value is checked
      if (checkHeaderValue(value) == nullptr) add(known, value);
      continue;
    }
    if (checkHeaderField(name, value) != nullptr || name.size() > kNameBytes - lower_used_) continue;
    char* l = lower_ + lower_used_;
    for (size_t i = 0; i < name.size(); ++i) {
      char c = name[i];
      l[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
    }
    lower_used_ += name.size();
    add(std::string_view(l, name.size()), value, false);
  }
  if (plan.send_length) {
    char* length_end = std::to_chars(length_, length_ + sizeof length_, plan.bodySize()).ptr;
    add("content-length", std::string_view(length_, length_end - length_));
  }
}

}  // namespace lisod
