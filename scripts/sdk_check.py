#!/usr/bin/env python3
"""Calls a running `dbwm serve` with Huawei Cloud's official Python SDK.

    pip install huaweicloudsdkdsc
    python3 scripts/sdk_check.py http://127.0.0.1:8080 AK SK [PROJECT_ID]

Embeds a watermark into 2,000 rows with `DscClient.create_database_water_mark`
and reads it back with `show_database_water_mark`, unchanged SDK code apart
from the endpoint; then checks that a wrong SK is refused with
`ClientRequestException` carrying the server's error code and request id.
Exits 0 when all of it holds.
"""
import sys

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkdsc.v1 import (
    Columns,
    CreateDatabaseWaterMarkRequest,
    DscClient,
    EmbeddedDatabaseWatermark,
    ExtractedDatabaseWatermark,
    ShowDatabaseWaterMarkRequest,
)


def client(endpoint, ak, sk, project):
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    return (
        DscClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ak, sk, project))
        .with_endpoints([endpoint])
        .build()
    )


def main():
    endpoint, ak, sk = sys.argv[1:4]
    project = sys.argv[4] if len(sys.argv) > 4 else "0123456789abcdef0123456789abcdef"
    dsc = client(endpoint, ak, sk, project)
    columns = [
        Columns(name="id", type="INTEGER", primary_key=True),
        Columns(name="salary", type="DOUBLE", primary_key=False),
        Columns(name="city", type="VARCHAR", primary_key=False),
    ]
    data = [
        {"id": i, "salary": round(3000 + (i * 37) % 5000 + (i % 97 + 1) / 100, 2), "city": "city-%d" % (i % 300)}
        for i in range(2000)
    ]
    embedded = dsc.create_database_water_mark(
        CreateDatabaseWaterMarkRequest(
            body=EmbeddedDatabaseWatermark(
                watermark_content="acme->sdk", watermark_key="sdk check key", columns=columns, data=data
            )
        )
    )
    marked = embedded.marked_data
    assert len(marked) == 2000, len(marked)
    # The SDK reads JSON numbers as Decimal; compare values, not types.
    changed = sum(1 for a, b in zip(data, marked) if float(b["salary"]) != a["salary"] or b["city"] != a["city"])
    print("embed: %d rows, %d changed" % (len(marked), changed))
    extracted = dsc.show_database_water_mark(
        ShowDatabaseWaterMarkRequest(
            body=ExtractedDatabaseWatermark(watermark_key="sdk check key", columns=columns, data=marked)
        )
    )
    print("extract:", extracted.watermarks)
    assert extracted.watermarks == ["acme->sdk"], extracted.watermarks
    try:
        client(endpoint, ak, sk + "x", project).show_database_water_mark(
            ShowDatabaseWaterMarkRequest(
                body=ExtractedDatabaseWatermark(watermark_key="k", columns=columns, data=marked[:10])
            )
        )
        raise SystemExit("a wrong SK was accepted")
    except ClientRequestException as e:
        print("wrong SK:", e.status_code, e.error_code, e.request_id)
        assert e.status_code == 401 and e.error_code == "APIGW.0301" and e.request_id, e
    print("sdk check: ok")


if __name__ == "__main__":
    main()
