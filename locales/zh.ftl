# 简体中文。

## 字段名称。
field-name = 姓名
field-email = 电子邮箱
field-subject = 主题
field-message = 留言
field-category = 类别
field-organization = 单位
field-country = 国家/地区
field-phone = 电话
field-consent = 同意
field-page = 页面

## 类别名称。
category-inquiry = 咨询
category-question = 问题
category-commendation = 表扬
category-other = 其他

## 字段错误。
error-required = 请填写“{ $label }”。
error-too_long = “{ $label }”最多 { $max } 个字符。
error-multiline = “{ $label }”只能是一行。
error-control_characters = “{ $label }”不能包含控制字符。
error-invalid_email = “{ $label }”不是有效的电子邮箱地址。
error-invalid_characters = “{ $label }”只能包含数字、空格和 + - ( ) .
error-invalid_choice = “{ $label }”的值不在可选项中。
error-invalid_type = “{ $label }”的值类型不正确。
error-unknown_field = 此表单没有“{ $label }”字段。
error-consent_required = 请先表示同意，再提交此表单。
error-captcha_required = 请完成防垃圾信息验证。
error-captcha_failed = 防垃圾信息验证未通过，请重试。
error-out_of_range = “{ $label }”的值必须在 { $range } 范围内。
error-invalid_url = “{ $label }”必须是以 http:// 或 https:// 开头的网址。
error-invalid_date = “{ $label }”必须是日期，格式如 2026-05-31。
error-too_large = { $label } 每个文件最多 { $max } 字节。
error-too_many_files = { $label } 最多 { $max } 个文件。
error-invalid_file_type = 此表单不接受 { $label } 的文件类型。
error-empty_file = { $label } 是空文件。
problem-file-too-large-title = 文件过大

## 请求错误。
problem-malformed-body-title = 请求内容格式错误
problem-malformed-body-json = 请求内容不是有效的 JSON：{ $why }
problem-malformed-body-form = 请求内容不是有效的表单编码：{ $why }
problem-malformed-body-unreadable = 无法读取请求内容：{ $why }
problem-body-too-large-title = 请求内容过大
problem-body-too-large-detail = 请求内容不能超过 { $limit } 字节。
problem-body-timeout-title = 请求内容传输过慢
problem-body-timeout-detail = 整个请求内容须在 { $seconds } 秒内送达。
problem-unsupported-media-type-title = 不支持的内容类型
problem-unsupported-media-type-detail = 请发送 application/json、application/x-www-form-urlencoded 或 multipart/form-data。
problem-validation-title = 表单有误
problem-validation-detail = 有 { $count } 个字段需要修改。
problem-idempotency-key-reused-title = 幂等键被重复使用
problem-idempotency-key-reused-detail = 此 Idempotency-Key 已用于不同的请求内容，请使用新的键。
problem-idempotency-key-in-flight-title = 请求仍在处理中
problem-idempotency-key-in-flight-detail = 使用此 Idempotency-Key 的第一个请求仍在处理中，请稍后重试。
problem-origin-not-allowed-title = 来源不被允许
problem-origin-not-allowed-detail = 不接受来自此来源的请求。
problem-rate-limited-title = 请求过多
problem-rate-limited-detail = 请求过多，请在 { $retry_after } 秒后重试。
problem-storage-unavailable-title = 服务暂不可用
problem-storage-unavailable-detail = 存储繁忙或不可用，未保存任何内容。请在 { $retry_after } 秒后重试。
problem-internal-title = 内部错误
problem-internal-detail = 我们这边出了问题，这不是您的错。

## 无 JavaScript 表单的 HTML 页面。
page-error-title = 您的留言未能发送
page-error-back = 请使用浏览器的“返回”按钮回到表单，您填写的内容仍在。
page-thanks-title = 谢谢
page-thanks-body = 我们已收到您的留言，将尽快回复。
page-thanks-reference = 您的编号：{ $id }

## 发给访客的确认邮件（发给工作人员的邮件不翻译）。
receipt-subject = 我们已收到您的留言：{ $subject }（{ $id }）
receipt-greeting = { $name }，您好！
receipt-body = 感谢您与我们联系。我们已收到您的留言，将尽快回复。如您就此事再次来信，请注明编号：{ $id }
receipt-your-message = 您的留言：
receipt-subject-label = 主题：{ $subject }
receipt-automatic = 这是一封自动确认邮件，无需回复。
