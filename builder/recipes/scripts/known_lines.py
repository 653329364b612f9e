import os, sys, sysconfig
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION") or "other"
except (ValueError, OSError):
    libc = "other"
key = "%s-%s-%s" % (sys.implementation.cache_tag, sysconfig.get_platform(), libc.replace(" ", ""))
if not key or key.startswith(".") or "/" in key or len(key.split()) != 1:
    sys.exit(1)
record_dir, req = sys.argv[1], sys.argv[2]
def lines_of(path):
    try:
        with open(path, "rb") as handle:
            found = handle.read().split(b"\n")
    except FileNotFoundError:
        return []
    if found and not found[-1]:
        found.pop()
    return found
def write(path, lines):
    with open(path, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
wanted = [ln for ln in lines_of(req) if ln.strip() and not ln.lstrip().startswith(b"#")]
record = lines_of(os.path.join(record_dir, key + ".txt"))
recorded, current = set(record), set(wanted)
os.makedirs(record_dir, exist_ok=True)
while True:
    work = os.path.join(record_dir, ".run." + os.urandom(6).hex())
    try:
        os.mkdir(work, 0o700)
        break
    except FileExistsError:
        pass
known = [ln for ln in wanted if ln in recorded]
write(os.path.join(work, "known"), known)
write(os.path.join(work, "new"), [ln for ln in wanted if ln not in recorded])
write(os.path.join(work, "record"), ([ln for ln in record if ln not in current] + wanted)[-5000:])
print(len(wanted), len(known), key, work)
