// Process start for CGI scripts and FastCGI backends: vfork + execve plus a pidfd.
#pragma once
#include <napi.h>
#include <sys/types.h>

#include <string>

namespace lisod {

// What to start. argv[0] is conventionally `file`; argv and envp end with nullptr.
// stdin_mode: an fd to give the child as its standard input, -1 for a new pipe (its write
// end returned), -2 for /dev/null.
struct SpawnSpec {
  const char* file;
  char* const* argv;
  char* const* envp;
  const char* cwd;
  int stdin_mode;
};

// The started child and the parent's ends of its pipes, all close-on-exec and owned by the
// caller (stdin_fd -1 unless piped).
struct Spawned {
  pid_t pid = -1;
  int pidfd = -1;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// Starts the child with vfork (no copy of this large process): it leads its own process
// group (in our session), with default signal dispositions, an empty signal mask and cwd set.
// Returns 0, or an errno with `*what` naming the step that failed (nothing is left open).
int spawnChild(const SpawnSpec& spec, Spawned* out, const char** what);

// waitid on a started child's pidfd, without blocking: false while it runs; true once it has
// been reaped, with *code its exit status (-1 when a signal ended it, or waitid failed) and
// *signal the signal (0 when it exited).
bool reapChild(int pidfd, int* code, int* signal);

// An Error with `code` (ENOENT, EACCES, ENOEXEC, EMFILE or ESPAWN) and `errno` (negative).
Napi::Error spawnError(Napi::Env env, int err, const std::string& what);

// Sets listenUnix and the ScriptRuns class on exports (contracts in src/native.ts).
void initSpawn(Napi::Env env, Napi::Object exports);

}  // namespace lisod
