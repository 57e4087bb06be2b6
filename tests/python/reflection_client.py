"""Lists a Schakel server's services through gRPC server reflection with
Python's grpcio-reflection, which speaks only grpc.reflection.v1alpha.

Usage: reflection_client.py https://127.0.0.1:PORT CA_PEM
Prints one service name per line; exits 1 when reflection fails.
"""

import sys
import urllib.parse

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> int:
    url, ca_path = sys.argv[1], sys.argv[2]
    target = urllib.parse.urlparse(url).netloc
    with open(ca_path, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    # The dev certificate names localhost; the server listens on 127.0.0.1.
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(target, credentials, options=options) as channel:
        try:
            services = ProtoReflectionDescriptorDatabase(channel).get_services()
        except grpc.RpcError as err:
            print(f"reflection failed: {err.code()} {err.details()}", file=sys.stderr)
            return 1
    for name in services:
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
