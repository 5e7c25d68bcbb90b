"""Our v1 signer against Alibaba's worked examples (research/aliyun.md §2), byte for byte."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from smscode.adapters.providers.aliyun import Credentials, sign, signed_url, string_to_sign

# A: the generic RPC example in "Request syntax and signature method V2 for RPC APIs".
DESCRIBE_REGIONS = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}
# B: the SMS example in "HTTP协议及签名" / "签名机制" (document_detail/56189, 101343).
SEND_SMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


def test_the_rpc_example_string_to_sign_and_signature() -> None:
    assert string_to_sign("GET", DESCRIBE_REGIONS) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
        "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
        "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z"
        "%26Version%3D2014-05-26"
    )
    assert sign("GET", DESCRIBE_REGIONS, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


@pytest.mark.parametrize(
    ("method", "secret", "signature"),
    [
        ("GET", "testSecret", "zJDF+Lrzhj/ThnlvIToysFRq6t4="),  # as documented
        ("GET", "testsecret", "EpROzuoKhdewdxdmVWhll2qdKbk="),  # the secret's case counts
        ("POST", "testSecret", "Xvhv7fPXrPkLVSnlt0jIr08o8NQ="),  # the method is signed
    ],
)
def test_the_sms_example(method: str, secret: str, signature: str) -> None:
    assert sign(method, SEND_SMS, secret) == signature


def test_what_sdk_core_sends_for_the_sms_example() -> None:
    # captured off the wire from aliyun-python-sdk-core 2.16.1: POST, JSON, an empty
    # SignatureType that is signed all the same
    params = SEND_SMS | {"Format": "JSON", "SignatureType": ""}
    assert sign("POST", params, "testSecret") == "WcTo+BN8vEfTWw8H4XnmRbpIP58="


def test_the_signature_parameter_itself_is_never_signed() -> None:
    signed = SEND_SMS | {"Signature": "anything"}
    assert sign("GET", signed, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_a_signed_url_carries_every_parameter_rfc3986_encoded_and_verifies() -> None:
    creds = Credentials(key_id="testId", secret="testSecret")
    url = signed_url("https://dysmsapi.aliyuncs.com/", creds, "SendSms", {"OutId": "a b*~"})
    split = urlsplit(url)
    assert (split.scheme, split.netloc, split.path) == ("https", "dysmsapi.aliyuncs.com", "/")
    assert "OutId=a%20b%2A~" in split.query  # %20 never +, * encoded, ~ literal
    params = dict(parse_qsl(split.query, keep_blank_values=True))
    assert params["SignatureMethod"] == "HMAC-SHA1"
    assert params["SignatureVersion"] == "1.0"
    assert params["Version"] == "2017-05-25"
    assert params["Action"] == "SendSms"
    assert sign("POST", params, "testSecret") == params["Signature"]
    assert "testSecret" not in url
    assert "testSecret" not in repr(creds)
