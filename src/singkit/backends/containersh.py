"""What runs as PID 1 of a `docker` target's container: the two POSIX shell scripts.

The image may have no Python, so the supervising process inside the container is shell, run by
the job's shell (bash where the image has it, else sh; workdir.shell_argv). RANKS_SH runs N
ranks of the command (`processes-per-node` > 1); ONE_SH runs one process. Both pass a SIGTERM to
PID 1 on to the whole process group and keep the target's grace (pid_namespaces(7): PID 1 of a
PID namespace gets no signal it has no handler for).
"""

# The ranks of one container, in POSIX shell (the image may have no Python), run by the job's
# shell (bash or sh, which is "$0"):  shell_argv(RANKS_SH, SETUP, COMMAND, N, GRACE)
# The setup runs in this shell, so what it exports (and where it cd's) reaches every rank.
# Each rank is a background job that records "<rank> <exit code>" in $_sk_dir/exits as soon as
# its command ends and wakes the loop (USR1); the first non-zero line is the failing rank: it
# goes to run.log as an `exit` line for the run's reason (so does a failed setup), everything
# else in the container's process group gets SIGTERM, and after GRACE seconds the shell exits
# with that rank's code. Once all ranks ended, their prefixed output gets up to 5 s to drain
# (a child a rank left behind may hold its pipe). The shell is the container's PID 1, so its
# exit ends whatever still runs. Our own helpers catch (':') or ignore SIGTERM so they outlive
# the stop long enough to record and copy out the ranks' last words; the ranks' commands start
# with the default action (a caught signal is reset on exec, an ignored one would not be).
# A SIGTERM to this shell (a cancel: docker sends it to PID 1 only) goes on to the whole group
# once, then the loop waits for the ranks up to GRACE seconds as after a failure, and the
# container exits 143 (128+SIGTERM).
RANKS_SH = r"""_sk_setup=$1 _sk_cmd=$2 _sk_n=$3 _sk_grace=$4 _sk_term=
_sk_note() { printf '{"t": %s, "event": "exit", %s}\n' "$(date +%s 2>/dev/null || echo 0)" "$1" >> "${SINGKIT_RUN_LOG:-/dev/null}"; }
if [ -n "$_sk_setup" ]; then
  eval "$_sk_setup" || {
    _sk_c=$?; _sk_r="the setup failed (exit code $_sk_c); the command did not start"
    echo "singkit: $_sk_r" >&2; _sk_note "\"exit_code\": $_sk_c, \"reason\": \"$_sk_r\""; exit "$_sk_c"
  }
fi
_sk_dir=$(mktemp -d 2>/dev/null) || { _sk_dir=/tmp/singkit-ranks.$$ && mkdir -p "$_sk_dir"; } || exit 1
_sk_prefix() {
  trap '' TERM
  _sk_p=; [ "$1" = 0 ] || _sk_p="[rank $1] "
  while IFS= read -r _sk_line || [ -n "$_sk_line" ]; do printf '%s%s\n' "$_sk_p" "$_sk_line"; done
}
_sk_ended() { echo "$1 $2" >> "$_sk_dir/exits"; kill -USR1 $$ 2>/dev/null; }
_sk_rank() {
  trap ':' TERM
  RANK=$1 LOCAL_RANK=$1 && export RANK LOCAL_RANK
  { trap ':' TERM; { trap ':' TERM; "$0" -c "$_sk_cmd"; _sk_ended "$1" $?; } 2>&1 1>&3 3>&- | _sk_prefix "$1" >&2; } 3>&1 | _sk_prefix "$1"
  : > "$_sk_dir/drained.$1"
  kill -USR1 $$ 2>/dev/null
}
trap ':' USR1
trap '_sk_term=1' TERM
_sk_k=0
while [ "$_sk_k" -lt "$_sk_n" ]; do _sk_rank "$_sk_k" & _sk_k=$((_sk_k + 1)); done
_sk_failed= _sk_waited=0 _sk_drain=0
while :; do
  _sk_done=0 _sk_drained=0
  if [ -f "$_sk_dir/exits" ]; then
    while read -r _sk_r _sk_c; do
      _sk_done=$((_sk_done + 1))
      if [ -z "$_sk_failed" ] && [ "$_sk_c" != 0 ]; then _sk_failed="$_sk_r $_sk_c"; fi
    done < "$_sk_dir/exits"
  fi
  if [ "$_sk_term" = 1 ]; then trap ':' TERM; _sk_term=2; kill -TERM 0 2>/dev/null; fi
  if [ -n "$_sk_failed$_sk_term" ]; then
    if [ "$_sk_waited" = 0 ] && [ -z "$_sk_term" ]; then
      echo "singkit: rank ${_sk_failed% *} ended (exit code ${_sk_failed#* }); stopping the other ranks" >&2
      _sk_note "\"rank\": ${_sk_failed% *}, \"exit_code\": ${_sk_failed#* }"
      trap ':' TERM; kill -TERM 0 2>/dev/null
    fi
    [ "$_sk_waited" -ge "$_sk_grace" ] && break
    _sk_waited=$((_sk_waited + 1))
  fi
  for _sk_f in "$_sk_dir"/drained.*; do [ -e "$_sk_f" ] && _sk_drained=$((_sk_drained + 1)); done
  if [ "$_sk_done" -ge "$_sk_n" ]; then
    [ "$_sk_drained" -ge "$_sk_n" ] || [ "$_sk_drain" -ge 5 ] && break
    _sk_drain=$((_sk_drain + 1))
  fi
  sleep 1 & wait $!
done
rm -rf "$_sk_dir"
[ -n "$_sk_term" ] && exit 143
[ -n "$_sk_failed" ] && exit "${_sk_failed#* }"
exit 0
"""

# One process, in POSIX shell run by the job's shell ("$0"):  shell_argv(ONE_SH, COMMAND, GRACE)
# COMMAND runs in a child shell of the same kind; a SIGTERM (INT, HUP) to this one, PID 1, goes on to the whole
# process group once (the program, and anything a shell of COMMAND's left behind), and what
# still runs gets up to GRACE seconds once COMMAND's shell ended (a program behind a shell that
# died of the signal may still be saving its work; PID 1's exit would kill it). Other processes
# are found in /proc (the container's own PID namespace), zombies not counted. Exits with
# COMMAND's code, or 128+15 after a signal. `wait` returns early when a trapped signal arrives:
# the loop tells that from COMMAND's end by whether its pid is still there; after a signal it
# polls once a second (COMMAND itself counts among what still runs) so the grace is kept even
# when the program never exits.
ONE_SH = r"""_sk_cmd=$1 _sk_grace=$2 _sk_term=
trap '_sk_term=1' TERM INT HUP
"$0" -c "$_sk_cmd" &
_sk_pid=$!
_sk_stop() { trap ':' TERM INT HUP; _sk_term=2; kill -TERM 0 2>/dev/null; }
while :; do
  [ "$_sk_term" = 1 ] && break
  wait "$_sk_pid"; _sk_c=$?
  kill -0 "$_sk_pid" 2>/dev/null || break
done
[ -z "$_sk_term" ] && exit "$_sk_c"
_sk_stop
_sk_others() {
  for _sk_p in /proc/[0-9]*; do
    [ "${_sk_p#/proc/}" = "$$" ] && continue
    read -r _sk_s < "$_sk_p/stat" 2>/dev/null || continue
    _sk_s=${_sk_s##*) }
    case $_sk_s in Z*|X*) ;; *) return 0 ;; esac
  done
  return 1
}
_sk_waited=0
while _sk_others && [ "$_sk_waited" -lt "$_sk_grace" ]; do sleep 1 & wait $!; _sk_waited=$((_sk_waited + 1)); done
kill -KILL 0 2>/dev/null
exit 143
"""
