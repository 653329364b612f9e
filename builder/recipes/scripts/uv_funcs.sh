uv_install() { "$uv" pip install --python "$venv/bin/python" "$@"; }
install_file() {  # FILE [uv options]: -r FILE, with the constraints when there are any
  file="$1"; shift
  if [ -s "$cons" ]; then uv_install "$@" -r "$file" -c "$cons"; else uv_install "$@" -r "$file"; fi
}
record_setup() {  # RECORD_DIR: sets $work, $rec, $total and $known, or fails (then: plain online install)
  out=$("$venv/bin/python" -I -S -c "$known_py" "$1" "$req" 2>/dev/null) || return 1
  total=${out%% *}; out=${out#* }; known=${out%% *}; out=${out#* }; key=${out%% *}; work=${out#* }
  case "$total$known" in ""|*[!0-9]*) return 1;; esac
  case "$key" in ""|*/*|.*) return 1;; esac
  case "$work" in "$1"/.run.*) ;; *) return 1;; esac
  trap 'rm -rf "$work" "$uv_tmp"' EXIT
  trap 'exit 1' HUP INT TERM
  rec="$1/$key.txt"
}
known_first() {
  new=$((total - known))
  if [ "$known" -eq 0 ]; then
    echo "uv: $total of $total requirements are new here: resolving them with the index"
    install_file "$req"
  else
    fetch=""
    if [ "$new" -gt 0 ]; then  # meanwhile the index brings the new lines into the cache (symlinks: no copies)
      install_file "$work/new" --target "$work/fetch" --link-mode symlink > "$work/fetch.log" 2>&1 &
      fetch=$!
    fi
    if out=$(install_file "$work/known" --offline 2>&1); then
      printf '%s\n' "$out"
      echo "uv: $known of $total requirements installed from the cache (offline)"
      if [ -n "$fetch" ]; then
        echo "uv: $new of $total requirements are new here: resolving them with the index"
        wait "$fetch" || true
        if out=$(install_file "$req" --offline 2>&1); then printf '%s\n' "$out"
        else
          echo "uv: the cache still misses something the new requirements need: resolving all $total with the index"
          install_file "$req"
        fi
      fi
    else
      if [ -n "$fetch" ]; then wait "$fetch" || true; fi
      echo "uv: the cache no longer has what the $known known requirements need (pruned?): resolving all $total with the index"
      install_file "$req"
    fi
  fi
  mv -f "$work/record" "$rec"
}
