with

source as (

    select * from {{ source('opendental', 'patient') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        patnum as patient_id,
        {{ clean_fk('guarantor') }} as guarantor_id,
        {{ clean_fk('priprov') }} as primary_provider_id,
        {{ clean_fk('secprov') }} as secondary_provider_id,
        {{ clean_fk('clinicnum') }} as clinic_id,
        {{ clean_fk('billingtype') }} as billing_type_id,
        {{ clean_fk('employernum') }} as employer_id,
        {{ clean_fk('feesched') }} as fee_schedule_id,
        {{ clean_fk('superfamily') }} as super_family_id,

        ----------  text (patient identifiers; SSN is never copied into raw)
        fname as first_name,
        lname as last_name,
        nullif(preferred, '') as preferred_name,
        nullif(chartnumber, '') as chart_number,
        nullif(city, '') as city,
        nullif(state, '') as state,
        nullif(zip, '') as zip_code,

        ----------  enums
        patstatus as patient_status_code,
        {{ decode('patstatus', {0: 'Patient', 1: 'NonPatient', 2: 'Inactive', 3: 'Archived',
                                 4: 'Deleted', 5: 'Deceased', 6: 'Prospective'}) }} as patient_status,
        {{ decode('gender', {0: 'Male', 1: 'Female', 2: 'Unknown', 3: 'Other'}) }} as gender,
        {{ decode('position', {0: 'Single', 1: 'Married', 2: 'Child', 3: 'Widowed', 4: 'Divorced'}) }}
            as marital_status,

        ----------  numerics (family aging as stored by OpenDental, guarantor rows only)
        {{ to_money('estbalance') }} as estimated_balance,
        {{ to_money('baltotal') }} as od_family_balance_total,
        {{ to_money('insest') }} as od_family_insurance_estimate,

        ----------  booleans
        patstatus = 4 as is_deleted,
        patnum = guarantor as is_guarantor,

        ----------  dates
        {{ clean_date('birthdate') }} as birth_date,
        {{ clean_date('datefirstvisit') }} as first_visit_date,
        {{ clean_date('secdateentry') }} as created_date,

        ----------  timestamps
        datetstamp as updated_at,
        _loaded_at

    from source

)

select * from renamed
