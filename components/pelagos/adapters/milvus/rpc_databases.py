"""Database RPCs: Create / Drop / List / Describe / AlterDatabase.

Invariants: the database named in the request is the target (not the
`dbname` header, except that DescribeDatabase without a name describes the
header's database); created timestamps are hybrid timestamps as Milvus sends
them.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.params import kv_dict, kv_pairs
from pelagos.adapters.milvus.rpc_base import RPCBase, rpc
from pelagos.errors import InvalidArgumentError


def _target(request: Any) -> str:
    name: str = request.db_name
    if not name:
        raise InvalidArgumentError("the database name is empty")
    return name


class DatabaseRPCs(RPCBase):
    @rpc(None)
    async def CreateDatabase(self, request: Any, context: Any) -> Any:
        await self.proxy.create_database(_target(request), kv_dict(request.properties))
        return st.ok()

    @rpc(None)
    async def DropDatabase(self, request: Any, context: Any) -> Any:
        await self.proxy.drop_database(_target(request))
        return st.ok()

    @rpc(milvus_pb2.ListDatabasesResponse)
    async def ListDatabases(self, request: Any, context: Any) -> Any:
        dbs = await self.proxy.list_databases()
        return milvus_pb2.ListDatabasesResponse(
            status=st.ok(),
            db_names=[d.name for d in dbs],
            created_timestamp=[d.created_ts for d in dbs],
            db_ids=[d.database_id for d in dbs],
        )

    @rpc(milvus_pb2.DescribeDatabaseResponse)
    async def DescribeDatabase(self, request: Any, context: Any) -> Any:
        d = await self.proxy.describe_database(self.db(context, request))
        return milvus_pb2.DescribeDatabaseResponse(
            status=st.ok(),
            db_name=d.name,
            dbID=d.database_id,
            created_timestamp=d.created_ts,
            properties=kv_pairs(d.properties),
        )

    @rpc(None)
    async def AlterDatabase(self, request: Any, context: Any) -> Any:
        await self.proxy.alter_database(
            _target(request), kv_dict(request.properties), list(request.delete_keys)
        )
        return st.ok()
