// The response head of an h2 stream as nghttp2 name/value pairs (RFC 9113 §8.3.2):
// :status, server, date, a ResponsePlan's headers with lower-case names (§8.2.1), and
// content-length. Built on the stack, no allocation per response; a whole file's fields are
// lower-cased and checked once per file-cache entry (FileEntry::h2_fields), not per stream.
#pragma once
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <string_view>

namespace lisod {

struct ResponsePlan;

class H2Head {
 public:
  // date: the IMF-fixdate to send. The plan (and the file entry it holds) must outlive
  // nv() until nghttp2_submit_response has copied the fields.
  H2Head(const ResponsePlan& plan, std::string_view date);
  H2Head(const H2Head&) = delete;
  H2Head& operator=(const H2Head&) = delete;

  const nghttp2_nv* nv() const { return nv_; }
  size_t size() const { return count_; }

 private:
  static constexpr size_t kMaxFields = 24, kNameBytes = 512;
  // static_name: n outlives nghttp2's use of it (a literal or a cached entry's name), so
  // nghttp2 need not copy it.
  void add(std::string_view n, std::string_view v, bool static_name = true);

  nghttp2_nv nv_[kMaxFields];
  size_t count_ = 0;
  char lower_[kNameBytes];  // names lower-cased here (plan headers outside the known set)
  size_t lower_used_ = 0;
  char status_[8], length_[24];
};

}  // namespace lisod
