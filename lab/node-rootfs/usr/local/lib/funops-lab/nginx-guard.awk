# The configuration `nginx -T` printed, on stdin; `address`: this node's. Exit 1, each problem on
# stderr, for a server block without `listen` or with one on another address (unix: sockets pass).
#
# Tokens as nginx reads them: "..." and '...' strings (a backslash escapes the next character, a
# string may span lines), # comments to the end of the line, { } ; alone, and words of anything
# else; a word or string is kept without its quotes. Only blocks opened by `server` are checked
# (an upstream's `server` lines are directives, not blocks).

function listen_host(arg,   i) {  # the address part of a `listen` argument: "*" for a port alone
    if (substr(arg, 1, 1) == "[") { i = index(arg, "]"); return i ? substr(arg, 1, i) : arg "]" }
    if (index(arg, ":")) { i = length(arg); while (substr(arg, i, 1) != ":") i--; return substr(arg, 1, i - 1) }
    return (arg ~ /^[0-9]+$/) ? "*" : arg
}

function unquoted(w,   c) {
    while (w != "" && ((c = substr(w, 1, 1)) == "\"" || c == "'")) w = substr(w, 2)
    while (w != "" && ((c = substr(w, length(w), 1)) == "\"" || c == "'")) w = substr(w, 1, length(w) - 1)
    return w
}

function problem(text) { print "funops-lab-nginx-guard: " text > "/dev/stderr"; bad = 1 }

function token(t,   arg) {
    if (t == "{") {
        depth++; server[depth] = (words > 0 && word[0] == "server"); listens[depth] = 0; words = 0
    } else if (t == "}") {
        if (depth > 0) {
            if (server[depth] && !listens[depth]) problem("a server block without `listen` (nginx would listen on *:80)")
            depth--
        }
        words = 0
    } else if (t == ";") {
        if (depth > 0 && server[depth] && words > 1 && word[0] == "listen") {
            arg = word[1]; listens[depth]++
            if (substr(arg, 1, 5) != "unix:" && listen_host(arg) != address)
                problem("`listen " arg "` is not on this node's address " address)
        }
        words = 0
    } else word[words++] = unquoted(t)
}

BEGIN { depth = 0; words = 0; mode = ""; current = "" }  # mode: "", "w" (a word), or the open quote

{
    line = $0 "\n"; n = length(line)
    for (i = 1; i <= n; i++) {
        c = substr(line, i, 1)
        if (mode == "\"" || mode == "'") {
            current = current c
            if (c == "\\") { i++; current = current substr(line, i, 1) }
            else if (c == mode) { token(current); current = ""; mode = "" }
        } else if (mode == "w") {
            if (c ~ /[ \t\n\r\f\v{};"'#]/) { token(current); current = ""; mode = ""; i-- }
            else current = current c
        } else if (c == "#") break
        else if (c == "{" || c == "}" || c == ";") token(c)
        else if (c == "\"" || c == "'") { mode = c; current = c }
        else if (c !~ /[ \t\n\r\f\v]/) { mode = "w"; current = c }
    }
}

END { if (mode == "w") token(current); exit bad }
