# Русский.

## Названия полей.
field-name = Имя
field-email = Электронная почта
field-subject = Тема
field-message = Сообщение
field-category = Категория
field-organization = Организация
field-country = Страна
field-phone = Телефон
field-consent = Согласие
field-page = Страница

## Названия категорий.
category-inquiry = Запрос
category-question = Вопрос
category-commendation = Благодарность
category-other = Другое

## Ошибки полей.
error-required = Поле «{ $label }» обязательно.
error-too_long = Поле «{ $label }» должно содержать не более { $max } { $max ->
    [one] символа
   *[other] символов
}.
error-multiline = Поле «{ $label }» должно быть одной строкой.
error-control_characters = Поле «{ $label }» не должно содержать управляющих символов.
error-invalid_email = Поле «{ $label }» не является действительным адресом электронной почты.
error-invalid_characters = Поле «{ $label }» может содержать только цифры, пробелы и + - ( ) .
error-invalid_choice = Значение поля «{ $label }» не входит в список предложенных.
error-invalid_type = Поле «{ $label }» имеет значение неверного типа.
error-unknown_field = Поля «{ $label }» нет в этой форме.
error-consent_required = Чтобы отправить форму, пожалуйста, дайте согласие.
error-captcha_required = Пожалуйста, пройдите проверку на спам.
error-captcha_failed = Проверка на спам не пройдена; попробуйте ещё раз.
error-out_of_range = Значение поля «{ $label }» должно быть в пределах { $range }.
error-invalid_url = Поле «{ $label }» должно быть веб-адресом, начинающимся с http:// или https://.
error-invalid_date = Поле «{ $label }» должно быть датой вида 2026-05-31.
error-too_large = { $label }: не больше { $max } байт на файл.
error-too_many_files = { $label }: не больше { $max } файлов.
error-invalid_file_type = { $label }: такой тип файла эта форма не принимает.
error-empty_file = { $label }: файл пустой.
problem-file-too-large-title = Слишком большой файл

## Ошибки запроса.
problem-malformed-body-title = Некорректное тело запроса
problem-malformed-body-json = Тело запроса не является корректным JSON: { $why }
problem-malformed-body-form = Тело запроса не является корректной кодировкой формы: { $why }
problem-malformed-body-unreadable = Не удалось прочитать тело запроса: { $why }
problem-body-too-large-title = Слишком большой запрос
problem-body-too-large-detail = Тело запроса должно быть не больше { $limit } байт.
problem-body-timeout-title = Запрос передаётся слишком медленно
problem-body-timeout-detail = Всё тело запроса должно прийти за { $seconds } с.
problem-unsupported-media-type-title = Неподдерживаемый тип содержимого
problem-unsupported-media-type-detail = Отправьте application/json, application/x-www-form-urlencoded или multipart/form-data.
problem-validation-title = В форме есть ошибки
problem-validation-detail = { $count ->
    [one] { $count } поле требует внимания.
    [few] { $count } поля требуют внимания.
   *[other] { $count } полей требуют внимания.
}
problem-idempotency-key-reused-title = Ключ идемпотентности использован повторно
problem-idempotency-key-reused-detail = Этот Idempotency-Key уже использовался с другим телом запроса; используйте новый ключ.
problem-idempotency-key-in-flight-title = Запрос ещё обрабатывается
problem-idempotency-key-in-flight-detail = Первый запрос с этим Idempotency-Key ещё обрабатывается; повторите чуть позже.
problem-origin-not-allowed-title = Источник не разрешён
problem-origin-not-allowed-detail = Запросы с этого сайта не принимаются.
problem-rate-limited-title = Слишком много запросов
problem-rate-limited-detail = Слишком много запросов; повторите через { $retry_after } с.
problem-storage-unavailable-title = Сервис временно недоступен
problem-storage-unavailable-detail = Хранилище занято или недоступно; ничего не сохранено. Повторите через { $retry_after } с.
problem-internal-title = Внутренняя ошибка
problem-internal-detail = На нашей стороне что-то пошло не так; вашей вины в этом нет.

## HTML-страницы для формы без JavaScript.
page-error-title = Ваше сообщение не отправлено
page-error-back = Вернитесь к форме кнопкой «Назад» в браузере: всё, что вы ввели, сохранилось.
page-thanks-title = Спасибо
page-thanks-body = Мы получили ваше сообщение и ответим на него как можно скорее.
page-thanks-reference = Номер вашего обращения: { $id }

## Письмо-подтверждение посетителю (письма сотрудникам не переводятся).
receipt-subject = Мы получили ваше сообщение: { $subject } ({ $id })
receipt-greeting = Здравствуйте, { $name }!
receipt-body = Спасибо, что написали нам. Мы получили ваше сообщение и ответим на него как можно скорее. Если вы снова напишете нам по этому вопросу, укажите, пожалуйста, номер обращения: { $id }
receipt-your-message = Ваше сообщение:
receipt-subject-label = Тема: { $subject }
receipt-automatic = Это автоматическое подтверждение, отвечать на него не нужно.
