### The security mails: subjects and plain-text bodies (lines under 76 characters).
### Spanish (es-US): medical-portal register, addressed as "usted".

mail-verify-subject = Confirme su correo electrónico para el portal del paciente
mail-connected-subject = Su cuenta del portal del paciente se conectó a un expediente médico
mail-attempt-subject = Alguien intentó conectarse a su expediente médico
mail-sign-in-subject = Nuevo inicio de sesión en su cuenta del portal del paciente
mail-verify-body =
    Hola:

    alguien (esperamos que usted) creó una cuenta en el portal del
    paciente con este correo electrónico
    el { $when }.
    Para confirmar la dirección, abra este enlace en las próximas
    { $hours } horas:

    { $link }

    Necesita una dirección confirmada para poder conectar su expediente
    médico. Si usted no creó esta cuenta, no haga caso de este mensaje.
mail-connected-body =
    Hola:

    su cuenta del portal del paciente se conectó a un expediente médico
    el { $when }.
    Puede verlo después de iniciar sesión:
    { $account }

    Si no fue usted, inicie sesión, cambie su contraseña y llame a la
    oficina de expedientes médicos (HIM).
mail-attempt-body =
    Hola:

    el { $when } alguien intentó conectar otra cuenta
    al expediente médico al que está conectada su cuenta del portal del
    paciente. No se conectó; la oficina de expedientes médicos (HIM)
    revisará el intento.

    Si fue usted o alguien a quien se lo pidió, no tiene que hacer nada.
    De lo contrario, llame a la oficina de HIM. Su cuenta:
    { $account }
mail-sign-in-body =
    Hola:

    se inició sesión en su cuenta del portal del paciente
    el { $when } desde un navegador o dispositivo
    que no se había usado antes con ella.

    Si no fue usted, inicie sesión, cambie su contraseña y llame a la
    oficina de expedientes médicos (HIM). Su cuenta:
    { $account }
