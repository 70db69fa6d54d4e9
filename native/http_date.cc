// HTTP dates (RFC 9110 §5.6.7) without libc time functions: no locale, no TZ, no
// shared buffers; the civil-calendar arithmetic is H. Hinnant's days_from_civil.
#include <cstdint>
#include <cstring>

#include "static_file.h"

namespace lisod {
namespace {

constexpr const char* kDayNames[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kLongDayNames[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};
constexpr const char* kMonthNames[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years a 4-digit field can hold.
constexpr int64_t kMinTime = -62167219200;
constexpr int64_t kMaxTime = 253402300799;

// Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12, d 1..31).
constexpr int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

constexpr Civil civilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return Civil{static_cast<int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

static_assert(daysFromCivil(1970, 1, 1) == 0);
static_assert(daysFromCivil(2000, 3, 1) == 11017);
static_assert(civilFromDays(11017).year == 2000 && civilFromDays(11017).month == 3);

constexpr bool isLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

constexpr unsigned daysInMonth(int64_t y, unsigned m) {
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : kDays[m - 1];
}

inline int64_t floorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

inline void put2(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

inline void put4(char* p, unsigned v) {
  put2(p, v / 100);
  put2(p + 2, v % 100);
}

// "HH:MM:SS" for the seconds since midnight.
inline void putClock(char* p, unsigned secs) {
  put2(p, secs / 3600);
  p[2] = ':';
  put2(p + 3, secs / 60 % 60);
  p[5] = ':';
  put2(p + 6, secs % 60);
}

// Reads exactly n digits at s[*pos]; false if any is not a digit.
bool digits(std::string_view s, size_t* pos, size_t n, unsigned* out) {
  if (*pos + n > s.size()) return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool literal(std::string_view s, size_t* pos, std::string_view lit) {
  if (s.substr(*pos, lit.size()) != lit) return false;
  *pos += lit.size();
  return true;
}

// Matches one of names at s[*pos] (case-sensitive, RFC 9110 §5.6.7).
bool name(std::string_view s, size_t* pos, const char* const* names, int count, int* index) {
  for (int i = 0; i < count; ++i) {
    if (literal(s, pos, names[i])) {
      *index = i;
      return true;
    }
  }
  return false;
}

// "HH:MM:SS"
bool timeOfDay(std::string_view s, size_t* pos, unsigned* h, unsigned* m, unsigned* sec) {
  return digits(s, pos, 2, h) && literal(s, pos, ":") && digits(s, pos, 2, m) &&
         literal(s, pos, ":") && digits(s, pos, 2, sec);
}

int64_t toUnix(int64_t year, int month_index, unsigned day, unsigned h, unsigned m,
               unsigned sec) {
  const auto month = static_cast<unsigned>(month_index + 1);
  if (year < 1970 || day < 1 || day > daysInMonth(year, month) || h > 23 || m > 59 || sec > 60)
    return -1;
  if (sec == 60) sec = 59;  // leap second: clamp rather than roll into the next minute
  return daysFromCivil(year, month, day) * 86400 + h * 3600 + m * 60 + sec;
}

// A time clamped to the 4-digit years, split into its day and the seconds since midnight.
struct DayTime {
  int64_t days;  // since 1970-01-01
  Civil c;
  unsigned secs;
};

DayTime dayTime(int64_t t) {
  t = t < kMinTime ? kMinTime : t > kMaxTime ? kMaxTime : t;
  const int64_t days = floorDiv(t, 86400);
  return DayTime{days, civilFromDays(days), static_cast<unsigned>(t - days * 86400)};
}

}  // namespace

size_t formatHttpDate(int64_t unix_seconds, char* out) {
  const auto [days, c, secs] = dayTime(unix_seconds);
  // 1970-01-01 was a Thursday (index 4).
  const auto weekday = static_cast<unsigned>(days + 4 - floorDiv(days + 4, 7) * 7);
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  std::memcpy(out, kDayNames[weekday], 3);
  out[3] = ',';
  out[4] = ' ';
  put2(out + 5, c.day);
  out[7] = ' ';
  std::memcpy(out + 8, kMonthNames[c.month - 1], 3);
  out[11] = ' ';
  put4(out + 12, static_cast<unsigned>(c.year));
  out[16] = ' ';
  putClock(out + 17, secs);
  std::memcpy(out + 25, " GMT", 5);  // includes the NUL
  return 29;
}

size_t formatClfTime(int64_t unix_seconds, int offset_minutes, char* out) {
  const auto [days, c, secs] = dayTime(unix_seconds + int64_t{offset_minutes} * 60);
  put2(out, c.day);
  out[2] = '/';
  std::memcpy(out + 3, kMonthNames[c.month - 1], 3);
  out[6] = '/';
  put4(out + 7, static_cast<unsigned>(c.year));
  out[11] = ':';
  putClock(out + 12, secs);
  out[20] = ' ';
  out[21] = offset_minutes < 0 ? '-' : '+';
  const unsigned off = static_cast<unsigned>(offset_minutes < 0 ? -offset_minutes : offset_minutes) % (100 * 60);
  put2(out + 22, off / 60);
  put2(out + 24, off % 60);
  out[26] = '\0';
  return 26;
}

int64_t parseHttpDate(std::string_view s) {
  size_t pos = 0;
  int wday = 0;
  int month = 0;
  unsigned day = 0, year = 0, h = 0, m = 0, sec = 0;

  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() == 29 && name(s, &pos, kDayNames, 7, &wday) && literal(s, &pos, ", ")) {
    if (digits(s, &pos, 2, &day) && literal(s, &pos, " ") &&
        name(s, &pos, kMonthNames, 12, &month) && literal(s, &pos, " ") &&
        digits(s, &pos, 4, &year) && literal(s, &pos, " ") && timeOfDay(s, &pos, &h, &m, &sec) &&
        literal(s, &pos, " GMT") && pos == s.size())
      return toUnix(year, month, day, h, m, sec);
    return -1;
  }

  // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT". Two-digit years: 70–99 → 19xx,
  // 00–69 → 20xx (a fixed pivot keeps this a pure function of its input).
  pos = 0;
  if (name(s, &pos, kLongDayNames, 7, &wday) && literal(s, &pos, ", ")) {
    if (digits(s, &pos, 2, &day) && literal(s, &pos, "-") &&
        name(s, &pos, kMonthNames, 12, &month) && literal(s, &pos, "-") &&
        digits(s, &pos, 2, &year) && literal(s, &pos, " ") && timeOfDay(s, &pos, &h, &m, &sec) &&
        literal(s, &pos, " GMT") && pos == s.size())
      return toUnix(year + (year < 70 ? 2000 : 1900), month, day, h, m, sec);
    return -1;
  }

  // asctime-date: "Sun Nov  6 08:49:37 1994" (day is space-padded).
  pos = 0;
  if (s.size() == 24 && name(s, &pos, kDayNames, 7, &wday) && literal(s, &pos, " ") &&
      name(s, &pos, kMonthNames, 12, &month) && literal(s, &pos, " ")) {
    if (s[pos] == ' ') {
      ++pos;
      if (!digits(s, &pos, 1, &day)) return -1;
    } else if (!digits(s, &pos, 2, &day)) {
      return -1;
    }
    if (literal(s, &pos, " ") && timeOfDay(s, &pos, &h, &m, &sec) && literal(s, &pos, " ") &&
        digits(s, &pos, 4, &year) && pos == s.size())
      return toUnix(year, month, day, h, m, sec);
  }
  return -1;
}

}  // namespace lisod
