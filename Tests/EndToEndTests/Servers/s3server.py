"""An S3-compatible endpoint (moto's server mode) on 127.0.0.1 holding one published tree.

Usage: s3server.py ROOT BUCKET PREFIX
Uploads every file under ROOT, its .slicesync/ directory included, to s3://BUCKET/PREFIX/ with an
S3 client (boto3), readable by anyone as a public release bucket would be, prints the port, then
serves until it is terminated.
"""
import os
import signal
import sys
import threading

import boto3
from moto.server import ThreadedMotoServer


def main():
    root, bucket, prefix = sys.argv[1], sys.argv[2], sys.argv[3].strip("/")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_port
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="publisher",
        aws_secret_access_key="publisher",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=bucket)
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            key = prefix + "/" + os.path.relpath(path, root)
            s3.upload_file(path, bucket, key, ExtraArgs={"ACL": "public-read"})
    print(port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
