"""The report's Vietnamese labels: event types, outcomes, actions, correlation keys, agency names."""

from __future__ import annotations

from bus389.agencies import AGENCY_INFO, Agency

__all__ = [
    "BLOCK_ACTION_LABELS",
    "BLOCK_OUTCOME_LABELS",
    "CASE_OUTCOME_LABELS",
    "EVENT_TYPE_LABELS",
    "KEY_KIND_LABELS",
    "agency_name",
]

EVENT_TYPE_LABELS: dict[str, str] = {
    "suspect_seller": "Người bán có dấu hiệu vi phạm",
    "domain_block_request": "Yêu cầu chặn tên miền",
    "tax_discrepancy": "Cảnh báo người bán chưa kê khai thuế",
    "domain_block_result": "Kết quả chặn tên miền",
    "complaint": "Kiến nghị, khiếu nại, tố cáo",
    "case_referral": "Chuyển giao vụ việc",
    "case_outcome": "Kết quả xử lý vụ việc",
    "periodic_report": "Báo cáo định kỳ",
    "law_gap_proposal": "Đề xuất sửa đổi pháp luật",
    "routing_notice": "Thông báo niêm phong / không chuyển được",
}
BLOCK_OUTCOME_LABELS: dict[str, str] = {
    "BLOCKED": "Đã chặn",
    "PARTIAL": "Chặn một phần",
    "REJECTED": "Từ chối",
    "UNBLOCKED": "Đã gỡ chặn",
    "EXPIRED": "Hết hiệu lực",
    "UNKNOWN": "Không rõ",
    "": "Chưa có kết quả",
}
BLOCK_ACTION_LABELS: dict[str, str] = {
    "BLOCK": "Chặn",
    "UNBLOCK": "Gỡ chặn",
    "REVOKE_VN_DOMAIN": "Thu hồi tên miền .VN",
    "SUSPEND_LICENCE": "Đình chỉ giấy phép",
    "UNKNOWN": "Không rõ",
}
CASE_OUTCOME_LABELS: dict[str, str] = {
    "ADMINISTRATIVE_SANCTION": "Xử phạt vi phạm hành chính",
    "CRIMINAL_PROSECUTION": "Khởi tố hình sự",
    "WARNING": "Cảnh cáo",
    "NO_VIOLATION": "Không vi phạm",
    "TRANSFERRED": "Chuyển cơ quan khác",
    "OTHER": "Khác",
}
KEY_KIND_LABELS: dict[str, str] = {
    "seller": "Người bán",
    "tax_code": "Mã số thuế",
    "domain": "Tên miền",
    "phone": "Số điện thoại",
    "account": "Tài khoản bán hàng",
    "national_id": "Số định danh cá nhân",
}


def agency_name(code: str) -> str:
    try:
        return AGENCY_INFO[Agency(code)].name_vi
    except ValueError:
        return code
