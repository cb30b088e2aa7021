"""Stable reason codes of a verification result (documented in docs/verify.md)."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a certificate is not valid. The values are stable: reports and scripts rely on them."""

    NO_QR = "NO_QR"
    UNREADABLE_FILE = "UNREADABLE_FILE"
    NOT_OUR_FORMAT = "NOT_OUR_FORMAT"
    MALFORMED = "MALFORMED"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    KEY_REVOKED = "KEY_REVOKED"
    KEY_NOT_VALID_AT_ISSUE = "KEY_NOT_VALID_AT_ISSUE"
    REVOKED = "REVOKED"
    NUMBER_FORMAT = "NUMBER_FORMAT"
    NUMBER_KEY_MISMATCH = "NUMBER_KEY_MISMATCH"
    NUMBER_LEVEL_MISMATCH = "NUMBER_LEVEL_MISMATCH"
    NUMBER_YEAR_MISMATCH = "NUMBER_YEAR_MISMATCH"
    BAD_FIELD = "BAD_FIELD"
    DUPLICATE_NUMBER = "DUPLICATE_NUMBER"
    PDF_MISMATCH = "PDF_MISMATCH"
    TRUST_DATA_TOO_OLD = "TRUST_DATA_TOO_OLD"
    PDF_SIGNATURE_INVALID = "PDF_SIGNATURE_INVALID"
    PDF_CHANGED_AFTER_SIGNING = "PDF_CHANGED_AFTER_SIGNING"
    PDF_SIGNER_UNTRUSTED = "PDF_SIGNER_UNTRUSTED"
    PDF_SIGNER_MISMATCH = "PDF_SIGNER_MISMATCH"
    PDF_SIGNATURE_MISSING = "PDF_SIGNATURE_MISSING"
    PDF_CONTENT_ALTERED = "PDF_CONTENT_ALTERED"

    @property
    def text(self) -> str:
        """What the reason means, in Chinese, for people at a station."""
        return REASON_TEXT[self]

    @property
    def unreadable(self) -> bool:
        """Whether this reason means nothing could be read (verdict ``unreadable``)."""
        return self in (Reason.NO_QR, Reason.UNREADABLE_FILE)


REASON_TEXT: dict[Reason, str] = {
    Reason.NO_QR: "未找到二维码",
    Reason.UNREADABLE_FILE: "文件无法读取",
    Reason.NOT_OUR_FORMAT: "不是本系统格式的证书二维码",
    Reason.MALFORMED: "二维码内容损坏或格式错误",
    Reason.UNKNOWN_KEY: "签发机构的密钥不在信任库中",
    Reason.BAD_SIGNATURE: "签名无效：内容被篡改或伪造",
    Reason.KEY_REVOKED: "签发密钥已被吊销",
    Reason.KEY_NOT_VALID_AT_ISSUE: "发证日期不在签发密钥的有效期内",
    Reason.REVOKED: "证书已被吊销",
    Reason.NUMBER_FORMAT: "证书编号不符合编码规则",
    Reason.NUMBER_KEY_MISMATCH: "证书编号的机构备案号与签发机构不符",
    Reason.NUMBER_LEVEL_MISMATCH: "证书编号的等级代码与证书等级不符",
    Reason.NUMBER_YEAR_MISMATCH: "证书编号的年份代码与发证日期不符",
    Reason.BAD_FIELD: "证书字段无效",
    Reason.DUPLICATE_NUMBER: "同一证书编号出现在不同的证书内容上",
    Reason.PDF_MISMATCH: "PDF内嵌数据与二维码不一致",
    Reason.TRUST_DATA_TOO_OLD: "签发机构的吊销数据超过允许的时限，无法确认证书未被吊销",
    Reason.PDF_SIGNATURE_INVALID: "PDF签名无效：签名内容被篡改或签名损坏",
    Reason.PDF_CHANGED_AFTER_SIGNING: "PDF签名后文件被改动",
    Reason.PDF_SIGNER_UNTRUSTED: "PDF签名者不受信任",
    Reason.PDF_SIGNER_MISMATCH: "PDF签名机构与二维码签发机构不符",
    Reason.PDF_SIGNATURE_MISSING: "电子证书的PDF签名已被去除",
    Reason.PDF_CONTENT_ALTERED: "PDF页面印刷内容被改动：与二维码不符或被遮盖",
}
