#!/usr/bin/env python3
"""A Range-capable HTTP/1.1 file server for slicesync's end-to-end tests, with injectable faults.

    faultserver.py ROOT MODE

Listens on 127.0.0.1 on a free port, prints the port on stdout, serves files under ROOT. MODE:
  normal            RFC 9110 ranges, several ranges as multipart/byteranges
  ignore-range      always 200 with the whole file (as Python's http.server)
  first-range-only  several ranges get a single-part 206 with the first one (as Aliyun OSS)
  multi-501         several ranges get 501 (as GitHub's release CDN)
  truncate-once     the first range reply for a data file stops half-way and closes
  reset-once        the first request for a data file is closed without a reply
  change-once       after the first data request, the file's content and ETag change
  stall             data requests hang (to test interruption)
  slow              data replies trickle out in 16 KiB pieces every 20 ms; the bytes of data sent so far
                    are kept in ROOT/../sent-bytes (to kill a client mid-download)
Signatures (paths under .slicesync/) are always served normally. /latest/NAME.zsync redirects (302) to
/releases/v2/NAME.zsync; other /latest/ paths do not exist. Stops after 300 s at most.
"""
import http.server, os, signal, socketserver, sys, threading

# A parent may start us with signals blocked (Foundation's Process does); take them back.
signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())

ROOT, MODE = sys.argv[1], sys.argv[2]
state = {"data_requests": 0, "lock": threading.Lock()}

def parse_ranges(header, length):
    if not header or not header.startswith("bytes="):
        return None
    out = []
    for spec in header[6:].split(","):
        spec = spec.strip()
        first, _, last = spec.partition("-")
        if first == "":
            n = int(last)
            if n > 0:
                out.append((max(0, length - n), length))
        else:
            a = int(first)
            b = length if last == "" else min(length, int(last) + 1)
            if a < length:
                out.append((a, b))
    return out

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/latest/"):
            # A "latest" alias for control files only, as download sites keep one: relative URLs in them
            # work only when resolved against where the redirect leads.
            name = self.path[len("/latest/"):]
            if name.endswith(".zsync") and "/" not in name:
                self.send_response(302); self.send_header("Location", "/releases/v2/" + name)
            else:
                self.send_response(404)
            self.send_header("Content-Length", "0"); self.end_headers(); return
        path = os.path.normpath(os.path.join(ROOT, self.path.split("?")[0].lstrip("/")))
        if not path.startswith(os.path.abspath(ROOT)) or not os.path.isfile(path):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        data = open(path, "rb").read()
        etag = '"%x-%x"' % (len(data), int(os.stat(path).st_mtime_ns))
        is_data = "/.slicesync/" not in self.path
        mode = MODE if is_data else "normal"
        with state["lock"]:
            if is_data:
                state["data_requests"] += 1
            count = state["data_requests"]
        if mode == "change-once" and count >= 2:
            data = bytes(b ^ 0x5A for b in data)
            etag = '"changed"'
        if mode == "stall":
            threading.Event().wait(60)
            return
        if mode == "reset-once" and count == 1:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if_match = self.headers.get("If-Match")
        if if_match and if_match != etag:
            self.send_response(412); self.send_header("Content-Length", "0"); self.end_headers(); return
        ranges = None if mode == "ignore-range" else parse_ranges(self.headers.get("Range"), len(data))
        if ranges is not None and not ranges:
            self.send_response(416); self.send_header("Content-Range", "bytes */%d" % len(data))
            self.send_header("Content-Length", "0"); self.end_headers(); return
        if ranges and len(ranges) > 1 and mode == "multi-501":
            self.send_response(501); self.send_header("Content-Length", "0"); self.end_headers(); return
        if ranges and len(ranges) > 1 and mode == "first-range-only":
            ranges = ranges[:1]
        if not ranges:
            self.send_response(200); self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data); return
        if len(ranges) == 1:
            a, b = ranges[0]
            body = data[a:b]
            self.send_response(206); self.send_header("ETag", etag)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b - 1, len(data)))
        else:
            boundary = "slicesyncfaultserver"
            parts = []
            for a, b in ranges:
                parts.append(("\r\n--%s\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
                              % (boundary, a, b - 1, len(data))).encode() + data[a:b])
            body = b"".join(parts) + ("\r\n--%s--\r\n" % boundary).encode()
            self.send_response(206); self.send_header("ETag", etag)
            self.send_header("Content-Type", "multipart/byteranges; boundary=" + boundary)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncate-once" and count == 1:
            self.wfile.write(body[: len(body) // 2]); self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if mode == "slow":
            for start in range(0, len(body), 16384):
                self.wfile.write(body[start:start + 16384]); self.wfile.flush()
                with state["lock"]:
                    state["sent"] = state.get("sent", 0) + len(body[start:start + 16384])
                    # Replaced whole, never truncated in place: the test reads it while handlers write.
                    counter_path = os.path.join(ROOT, "..", "sent-bytes")
                    with open(counter_path + ".tmp", "w") as counter:
                        counter.write(str(state["sent"]))
                    os.replace(counter_path + ".tmp", counter_path)
                threading.Event().wait(0.02)
            return
        self.wfile.write(body)

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Timer(300, server.shutdown).start()
server.serve_forever()
