# Қазақша. (Written for this project; a native speaker's review is welcome.)

## Өрістердің атаулары.
field-name = Аты-жөні
field-email = Электрондық пошта
field-subject = Тақырып
field-message = Хабарлама
field-category = Санат
field-organization = Ұйым
field-country = Ел
field-phone = Телефон
field-consent = Келісім
field-page = Бет

## Санат атаулары.
category-inquiry = Сұрау
category-question = Сұрақ
category-commendation = Алғыс
category-other = Басқа

## Өріс қателері.
error-required = «{ $label }» өрісін толтыру міндетті.
error-too_long = «{ $label }» өрісі { $max } таңбадан аспауы керек.
error-multiline = «{ $label }» өрісі бір жолдан тұруы керек.
error-control_characters = «{ $label }» өрісінде басқару таңбалары болмауы керек.
error-invalid_email = «{ $label }» жарамды электрондық пошта мекенжайы емес.
error-invalid_characters = «{ $label }» өрісінде тек сандар, бос орындар және + - ( ) . болуы мүмкін.
error-invalid_choice = «{ $label }» мәні ұсынылған нұсқалардың ішінде жоқ.
error-invalid_type = «{ $label }» мәнінің түрі дұрыс емес.
error-unknown_field = Бұл пішінде «{ $label }» өрісі жоқ.
error-consent_required = Пішінді жіберу үшін келісіміңізді беріңіз.
error-captcha_required = Спамға қарсы тексеруден өтіңіз.
error-captcha_failed = Спамға қарсы тексеруден өтпедіңіз; қайталап көріңіз.
error-out_of_range = «{ $label }» мәні { $range } аралығында болуы керек.
error-invalid_url = «{ $label }» өрісі http:// немесе https:// деп басталатын веб-мекенжай болуы керек.
error-invalid_date = «{ $label }» өрісі 2026-05-31 түріндегі күн болуы керек.
error-too_large = { $label }: әр файл { $max } байттан аспауы керек.
error-too_many_files = { $label }: ең көбі { $max } файл.
error-invalid_file_type = { $label }: бұл пішін мұндай файл түрін қабылдамайды.
error-empty_file = { $label }: файл бос.
problem-file-too-large-title = Файл тым үлкен

## Сұрау қателері.
problem-malformed-body-title = Сұрау денесі қате
problem-malformed-body-json = Сұрау денесі жарамды JSON емес: { $why }
problem-malformed-body-form = Сұрау денесі жарамды пішін кодтауы емес: { $why }
problem-malformed-body-unreadable = Сұрау денесін оқу мүмкін болмады: { $why }
problem-body-too-large-title = Сұрау тым үлкен
problem-body-too-large-detail = Сұрау денесі { $limit } байттан аспауы керек.
problem-body-timeout-title = Сұрау тым баяу келді
problem-body-timeout-detail = Сұрау денесі толығымен { $seconds } секунд ішінде келуі керек.
problem-unsupported-media-type-title = Мазмұн түріне қолдау көрсетілмейді
problem-unsupported-media-type-detail = application/json, application/x-www-form-urlencoded немесе multipart/form-data жіберіңіз.
problem-validation-title = Пішінде қателер бар
problem-validation-detail = { $count } өрісті түзету қажет.
problem-idempotency-key-reused-title = Идемпотенттілік кілті қайта қолданылды
problem-idempotency-key-reused-detail = Бұл Idempotency-Key басқа сұрау денесімен қолданылған; жаңа кілт алыңыз.
problem-idempotency-key-in-flight-title = Сұрау әлі өңделуде
problem-idempotency-key-in-flight-detail = Осы Idempotency-Key бар алғашқы сұрау әлі өңделуде; сәлден соң қайталаңыз.
problem-origin-not-allowed-title = Дереккөзге рұқсат жоқ
problem-origin-not-allowed-detail = Бұл дереккөзден келген сұраулар қабылданбайды.
problem-rate-limited-title = Сұраулар тым көп
problem-rate-limited-detail = Сұраулар тым көп; { $retry_after } секундтан кейін қайталаңыз.
problem-storage-unavailable-title = Қызмет уақытша қолжетімсіз
problem-storage-unavailable-detail = Қойма бос емес немесе қолжетімсіз; ештеңе сақталған жоқ. { $retry_after } секундтан кейін қайталаңыз.
problem-internal-title = Ішкі қате
problem-internal-detail = Біз жақта ақау болды; бұған сіз кінәлі емессіз.

## JavaScript-сіз пішінге арналған HTML беттері.
page-error-title = Хабарламаңыз жіберілмеді
page-error-back = Пішінге браузердің «Артқа» түймесімен оралыңыз: енгізгеніңіздің бәрі сақталған.
page-thanks-title = Рақмет
page-thanks-body = Хабарламаңызды алдық, мүмкіндігінше тез жауап береміз.
page-thanks-reference = Өтініш нөміріңіз: { $id }

## Келушіге жіберілетін растау хаты (қызметкерлерге хаттар аударылмайды).
receipt-subject = Хабарламаңызды алдық: { $subject } ({ $id })
receipt-greeting = Құрметті { $name }!
receipt-body = Бізге жазғаныңызға рақмет. Хабарламаңызды алдық, мүмкіндігінше тез жауап береміз. Осы мәселе бойынша қайта жазсаңыз, өтініш нөмірін көрсетіңіз: { $id }
receipt-your-message = Сіздің хабарламаңыз:
receipt-subject-label = Тақырыбы: { $subject }
receipt-automatic = Бұл автоматты растау хаты, оған жауап берудің қажеті жоқ.
