"""What the push tests ask of an S3 endpoint, through boto3 (the reference client).

Usage: s3tool.py PORT get BUCKET KEY OUT | put BUCKET KEY FILE | keys BUCKET | uploads BUCKET DATA | meta BUCKET KEY
`uploads` prints the number of multipart uploads in progress (localbucket keeps them under DATA).
"""
import json
import os
import sys

import boto3


def main():
    port, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    if command == "get":
        with open(args[2], "wb") as out:
            out.write(s3.get_object(Bucket=args[0], Key=args[1])["Body"].read())
    elif command == "put":
        with open(args[2], "rb") as source:
            s3.put_object(Bucket=args[0], Key=args[1], Body=source.read())
    elif command == "keys":
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=args[0])
        print(json.dumps(sorted(item["Key"] for page in pages for item in page.get("Contents", []))))
    elif command == "uploads":
        directory = os.path.join(args[1], ".localbucket-uploads")
        if os.path.isdir(directory):
            print(len(os.listdir(directory)))
        else:
            print(len(s3.list_multipart_uploads(Bucket=args[0]).get("Uploads", [])))
    elif command == "meta":
        print(json.dumps(s3.head_object(Bucket=args[0], Key=args[1])["Metadata"]))


if __name__ == "__main__":
    main()
