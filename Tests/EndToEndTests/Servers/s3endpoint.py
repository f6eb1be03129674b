"""An empty S3-compatible endpoint on 127.0.0.1 with one bucket, for the push tests.

Usage: s3endpoint.py moto|localbucket DATA BUCKET
Starts moto's server (in memory) or localbucket (storing in DATA), creates BUCKET, prints the port, then
serves until it is terminated. moto implements ranged UploadPartCopy but ignores copy-source conditions;
localbucket checks them, validates ranges strictly and enforces 5 MiB parts.
"""
import os
import signal
import sys
import threading

import boto3


def main():
    kind, data, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
    if kind == "moto":
        from moto.server import ThreadedMotoServer
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        port = server._server.server_port
        stop_server = server.stop
    else:
        import logging
        from http.server import ThreadingHTTPServer
        from pathlib import Path
        import localbucket
        logging.disable(logging.CRITICAL)
        os.makedirs(data, exist_ok=True)
        localbucket.S3Handler.data_root = Path(data).resolve()
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), localbucket.S3Handler)
        port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        stop_server = httpd.shutdown
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    print(port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    stop_server()


if __name__ == "__main__":
    main()
