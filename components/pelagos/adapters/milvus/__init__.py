"""The Milvus wire adapter: gRPC MilvusService over the Pelagos ProxyAPI.

`MilvusServer` is the entry point; the servicer only translates between the
protobuf stubs that pymilvus ships and pelagos.interfaces, through pure
translators (schema_codec, field_data, search_codec, query_codec, params,
status) that never import gRPC.
"""

from pelagos.adapters.milvus.server import MilvusServer

__all__ = ["MilvusServer"]
