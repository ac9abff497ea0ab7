"""Counting stand-ins for the DynamoDB and SQS clients, for the producer-at-scale benchmark.

They keep recipients compactly (8 bytes each, so the measured memory is the producer's, not
the fake's), answer exactly the calls the producer makes, and count every call. A tiny
interpreter of ``SET``/``REMOVE``/``ADD`` update expressions covers the campaigns table.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from typing import Any

from campaigns.aws.dynamo import deserialize, serialize
from campaigns.aws.items import USER_PREFIX

_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD)\b")


class FakeDynamoDB:
    def __init__(self, recipients_table: str) -> None:
        self.calls: Counter[str] = Counter()
        self.items_written = 0
        self._recipients_table = recipients_table
        self._items: dict[tuple[str, str], dict[str, Any]] = {}  # the campaigns table
        self._phones = array("q")  # the recipients table, compactly
        self._pk = ""

    # -- the recipients table ------------------------------------------------------------

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.calls["BatchGetItem"] += 1
        return {"Responses": {table: [] for table in RequestItems}, "UnprocessedKeys": {}}

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.calls["BatchWriteItem"] += 1
        for request in RequestItems[self._recipients_table]:
            item = request["PutRequest"]["Item"]
            self._pk = item["PK"]["S"]
            self._phones.append(int(item["SK"]["S"].removeprefix(USER_PREFIX)))
            self.items_written += 1
        return {"UnprocessedItems": {}}

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.calls["GetItem"] += 1
        if TableName == self._recipients_table:
            return {}  # a fresh campaign: nobody is there yet
        item = self._items.get((Key["PK"]["S"], Key["SK"]["S"]))
        return {"Item": serialize(item)} if item else {}

    def put_item(self, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.calls["PutItem"] += 1
        if TableName == self._recipients_table:
            self._pk = Item["PK"]["S"]
            self._phones.append(int(Item["SK"]["S"].removeprefix(USER_PREFIX)))
            self.items_written += 1
        else:
            self._items[(Item["PK"]["S"], Item["SK"]["S"])] = deserialize(Item)
        return {}

    def query(self, TableName: str, **kwargs: Any) -> dict[str, Any]:  # noqa: N803
        self.calls["Query"] += 1
        pk = kwargs["ExpressionAttributeValues"][":pk"]["S"]
        if TableName != self._recipients_table:
            items = [serialize(v) for (p, _), v in self._items.items() if p == pk]
            return {"Items": items}
        start = int(kwargs.get("ExclusiveStartKey", {}).get("_i", {}).get("N", 0))
        limit = int(kwargs.get("Limit", 1000))
        end = min(start + limit, len(self._phones))
        items = [
            {
                "PK": {"S": self._pk},
                "SK": {"S": f"{USER_PREFIX}{self._phones[i]}"},
                "phone": {"S": str(self._phones[i])},
                "status": {"S": "PENDING"},
            }
            for i in range(start, end)
        ]
        page: dict[str, Any] = {"Items": items}
        if end < len(self._phones):
            page["LastEvaluatedKey"] = {"PK": {"S": pk}, "_i": {"N": str(end)}}
        return page

    # -- the campaigns table: a small update-expression interpreter ----------------------

    def update_item(self, TableName: str, Key: dict[str, Any], **kwargs: Any) -> dict[str, Any]:  # noqa: N803
        self.calls["UpdateItem"] += 1
        key = (Key["PK"]["S"], Key["SK"]["S"])
        item = self._items.setdefault(key, {"PK": key[0], "SK": key[1]})
        names = kwargs.get("ExpressionAttributeNames", {})
        values = deserialize(kwargs.get("ExpressionAttributeValues", {}))
        parts = _CLAUSE.split(kwargs["UpdateExpression"])
        for verb, body in zip(parts[1::2], parts[2::2], strict=True):
            for term in (t.strip() for t in body.split(",") if t.strip()):
                if verb == "SET":
                    name, value = (x.strip() for x in term.split("="))
                    item[names.get(name, name)] = values[value]
                elif verb == "REMOVE":
                    item.pop(names.get(term, term), None)
                else:
                    name, value = term.split()
                    attr = names.get(name, name)
                    item[attr] = item.get(attr, 0) + values[value]
        if kwargs.get("ReturnValues") == "ALL_NEW":
            return {"Attributes": serialize(item)}
        return {}


class FakeSQS:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.messages = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[Any]) -> dict[str, Any]:  # noqa: N803
        self.calls["SendMessageBatch"] += 1
        self.messages += len(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:  # noqa: N803
        self.calls["SendMessage"] += 1
        self.messages += 1
        return {"MessageId": str(self.messages)}


__all__ = ["FakeDynamoDB", "FakeSQS"]
