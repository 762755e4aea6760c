# json.awk - flatten a JSON document into one "path<TAB>value" line per
# scalar, for busybox awk (also runs under gawk/mawk).
#
#   {"hostname": "a b", "public_keys": {"k1": "ssh-ed25519 AAA x\n"},
#    "keys": [{"data": "..."}]}
# becomes
#   hostname<TAB>a b
#   public_keys.k1<TAB>ssh-ed25519 AAA x\n
#   keys.0.data<TAB>...
#
# Object keys are joined with ".", array elements are numbered from 0.
# Keys may come in any order and the document may be on one line or many.
# String escapes are decoded (\" \/ \uXXXX ...), except that a newline,
# carriage return, tab and backslash are written back as the two-character
# sequences \n \r \t \\ so that every value stays on one output line.
# null, true, false and numbers are printed as they appear.
# Exit status 1 (and a message on stderr) on malformed input.

function hexval(h,    i, v, d) {
    v = 0
    h = tolower(h)
    for (i = 1; i <= length(h); i++) {
        d = index("0123456789abcdef", substr(h, i, 1))
        if (d == 0) return -1
        v = v * 16 + d - 1
    }
    return v
}

function utf8(cp) {
    if (cp <= 0) return ""
    if (cp < 128) return sprintf("%c", cp)
    if (cp < 2048)
        return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
    return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
}

function unescape(t,    out, i, c, cp) {
    out = ""
    while ((i = index(t, "\\")) > 0) {
        out = out substr(t, 1, i - 1)
        c = substr(t, i + 1, 1)
        if (c == "n") out = out "\\n"
        else if (c == "r") out = out "\\r"
        else if (c == "t") out = out "\\t"
        else if (c == "\\") out = out "\\\\"
        else if (c == "b" || c == "f") out = out ""
        else if (c == "u") {
            cp = hexval(substr(t, i + 2, 4))
            if (cp >= 0) {
                out = out utf8(cp)
                t = substr(t, i + 6)
                continue
            }
            out = out "u"
        } else out = out c            # \" \/ and anything else
        t = substr(t, i + 2)
    }
    return out t
}

function emit(v,    p, k) {
    p = ""
    for (k = 1; k <= depth; k++) p = p (k > 1 ? "." : "") key[k]
    print p "\t" v
}

function fail(msg) {
    print "json.awk: " msg > "/dev/stderr"
    failed = 1
    exit 1
}

{ doc = doc $0 "\n" }

END {
    if (failed) exit 1
    s = doc
    depth = 0
    want_key = 0
    while (length(s) > 0) {
        if (match(s, /^[ \t\r\n]+/)) { s = substr(s, RLENGTH + 1); continue }
        c = substr(s, 1, 1)
        if (c == "{") { depth++; typ[depth] = "o"; key[depth] = ""; want_key = 1; s = substr(s, 2); continue }
        if (c == "[") { depth++; typ[depth] = "a"; key[depth] = 0; want_key = 0; s = substr(s, 2); continue }
        if (c == "}" || c == "]") {
            if (depth < 1) fail("unbalanced " c)
            depth--; want_key = 0; s = substr(s, 2); continue
        }
        if (c == ":") { want_key = 0; s = substr(s, 2); continue }
        if (c == ",") {
            if (typ[depth] == "o") want_key = 1; else key[depth]++
            s = substr(s, 2); continue
        }
        if (c == "\"") {
            if (!match(s, /^"[^"\\]*(\\.[^"\\]*)*"/)) fail("unterminated string")
            t = unescape(substr(s, 2, RLENGTH - 2))
            s = substr(s, RLENGTH + 1)
            if (want_key) { key[depth] = t; want_key = 0 } else emit(t)
            continue
        }
        if (match(s, /^[-+0-9.eEa-z]+/)) {
            emit(substr(s, 1, RLENGTH))
            s = substr(s, RLENGTH + 1)
            continue
        }
        fail("unexpected character '" c "'")
    }
    if (depth != 0) fail("unterminated object or array")
}
